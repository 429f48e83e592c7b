// The one way pg_causal runs SQL of its own through SPI.
//
// That SQL often runs with more rights than the session's role (SECURITY
// DEFINER functions, the liveness worker as a superuser) or decides what the
// session may do (the fence check of the insert trigger). Nothing a less
// trusted role controls may take part in it: the search_path is pinned to
// pg_catalog (then pg_temp, which is never searched for functions or
// operators), and the statements schema-qualify their objects and write
// operators as OPERATOR(pg_catalog.=), as PostgreSQL's own ri_triggers.c
// does. A database owner's ALTER DATABASE ... SET search_path, or a writer's
// own `=` first on its path, then changes nothing.
#pragma once

#include "infra/postgres.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace causal::pg {

constexpr const char* kPinnedSearchPath = "pg_catalog, pg_temp";

// Pins search_path (and only it) until unpin_search_path(level) rolls back
// every setting changed since. An error in between needs no unpinning: the
// aborting (sub)transaction rolls the settings back.
int pin_search_path();
void unpin_search_path(int level);

// Runs `query` with SPI (connected by the caller) and the search path
// pinned; raises unless SPI answers `expected` (SPI_OK_SELECT, ...).
struct SpiArgs {
    int count = 0;
    const Oid* types = nullptr;
    const Datum* values = nullptr;
    const char* nulls = nullptr;  // ' ' or 'n' per value; nullptr: none NULL
};
void spi_run(const char* query, int expected, SpiArgs args = {}, bool read_only = false, long limit = 0);

// Executes a kept plan (below) the same way; `what` names it in an error.
void spi_run_plan(SPIPlanPtr plan, int expected, const Datum* values, const char* nulls, bool read_only,
                  const char* what);

// A plan of `query`, made once per backend (with the search path pinned)
// and kept: PostgreSQL replans it when what it reads changes. For the
// statements a hot function runs on every call. SPI connected.
SPIPlanPtr kept_plan(const char* query, int nargs, const Oid* types, int cursor_options = 0);

// Whether a statement run through this module is running (at any depth):
// the replication role's hooks (mesh/replication_role.hpp) let those alone
// through.
bool in_own_statement();

// A column of the first row of the last result.
Datum spi_value(int column, bool* isnull);
// The same in text form (palloc'd), or nullptr for NULL.
char* spi_text(uint64 row, int column);
// An oid column of a row of the last result (InvalidOid for NULL).
Oid spi_oid(uint64 row, int column);

}  // namespace causal::pg
