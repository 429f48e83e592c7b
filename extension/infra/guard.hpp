// The boundary between C++ exceptions and PostgreSQL errors.
//
// ereport(ERROR) longjmps; a C++ exception unwinds. Neither may cross frames
// of the other kind. Core code may throw; every call into it from a function
// PostgreSQL calls goes through cpp_guard, which runs the C++ code, lets every
// C++ object it made be destroyed, and only then raises the PostgreSQL error.
#pragma once

#include <new>
#include <utility>

#include "core/error.hpp"
#include "infra/postgres.hpp"

namespace causal::pg {

int sqlstate_of(ErrorKind kind);

// What a caught exception said, copied out of it so that the exception can be
// destroyed before ereport longjmps past this frame.
struct CaughtError {
    int sqlstate = 0;
    char message[512] = "";
    char detail[512] = "";
    void set(int code, const char* msg, const char* det);
    [[noreturn]] void raise(int elevel) const;
};

// elevel: ERROR, or FATAL where there is no transaction to abort.
template <typename Fn>
auto cpp_guard(Fn&& fn, int elevel = ERROR) -> decltype(fn()) {
    CaughtError caught;
    try {
        return std::forward<Fn>(fn)();
    } catch (const Error& e) {
        caught.set(sqlstate_of(e.kind()), e.what(), e.detail().c_str());
    } catch (const std::bad_alloc&) {
        caught.set(ERRCODE_OUT_OF_MEMORY, "out of memory", "");
    } catch (const std::exception& e) {
        caught.set(ERRCODE_INTERNAL_ERROR, e.what(), "");
    } catch (...) {
        caught.set(ERRCODE_INTERNAL_ERROR, "unknown C++ exception in pg_causal", "");
    }
    caught.raise(elevel);
}

}  // namespace causal::pg
