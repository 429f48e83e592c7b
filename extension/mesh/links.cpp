// causal.link_name(): the names of the mesh's links (src/core/links.hpp),
// for SQL.
#include "core/links.hpp"
#include "infra/guard.hpp"
#include "infra/postgres.hpp"

extern "C" {
#include "utils/builtins.h"
}

// causal.link_name(from_region, to_region) -> name
CAUSAL_FUNCTION(link_name) {
    const char* from = text_to_cstring(PG_GETARG_TEXT_PP(0));
    const char* to = text_to_cstring(PG_GETARG_TEXT_PP(1));
    auto* out = static_cast<Name>(palloc0(NAMEDATALEN));
    causal::pg::cpp_guard([&] { strlcpy(NameStr(*out), causal::link_name(from, to).c_str(), NAMEDATALEN); });
    PG_RETURN_NAME(out);
}
