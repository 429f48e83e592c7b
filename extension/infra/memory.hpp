// C++ containers in PostgreSQL memory contexts.
//
// Core code allocates through a std::pmr::memory_resource; this one hands out
// chunks of a MemoryContext. What it holds is then PostgreSQL's to account
// for (a hash aggregate sees its size) and to free: when an error longjmps
// past an object whose memory all came from here, the context's reset frees
// it, so such objects may be abandoned without their destructors. Put them in
// the context too (make_in), never on a stack frame an ereport may skip.
#pragma once

#include <memory_resource>
#include <new>
#include <utility>

#include "infra/postgres.hpp"

extern "C" {
#include "utils/memutils.h"
}

namespace causal::pg {

class MemoryContextResource final : public std::pmr::memory_resource {
public:
    explicit MemoryContextResource(MemoryContext context) : context_(context) {}
    MemoryContext context() const { return context_; }

private:
    // Throws instead of raising: this runs inside C++ code, under cpp_guard.
    void* do_allocate(size_t bytes, size_t alignment) override {
        if (alignment > MAXIMUM_ALIGNOF || !AllocHugeSizeIsValid(bytes)) throw std::bad_alloc();
        void* chunk = MemoryContextAllocExtended(context_, bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
        if (chunk == nullptr) throw std::bad_alloc();
        return chunk;
    }
    void do_deallocate(void* chunk, size_t, size_t) override { pfree(chunk); }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    MemoryContext context_;
};

// A T built in `memory`'s context, to live as long as that context does.
template <typename T, typename... Args>
T* make_in(std::pmr::memory_resource& memory, Args&&... args) {
    void* place = memory.allocate(sizeof(T), alignof(T));
    return new (place) T(std::forward<Args>(args)...);
}

}  // namespace causal::pg
