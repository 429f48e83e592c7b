// pg_causal's own writes to a message table: a replicated row the apply
// path stores, a tombstone, a row the relay pulled.
//
// They go to the executor the way PostgreSQL's apply worker gives it a row
// (ExecSimpleRelationInsert and ExecSimpleRelationUpdate), never through
// SQL: no rewriter (a rule could turn the write into something else, or add
// its owner's statements to it), no planner, no row-level security. Row
// triggers fire, constraints and indexes are checked, the AFTER triggers
// run before the store returns. The caller decides as whom: the apply path
// and the tombstone store as the table's owner (owner.hpp), so that the
// owner's CHECK constraints and index expressions run with its rights.
#pragma once

#include "infra/postgres.hpp"

extern "C" {
#include "access/htup.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
}

namespace causal::pg {

// Inserts `row` into `rel`.
void store_insert(Relation rel, HeapTuple row);

// The row of `rel` whose replica identity key (msg_id) is `key`, newest
// version, locked FOR UPDATE until the transaction ends; waits for a writer
// of it that is still running. False when there is none. `out`: a slot of
// the relation's (table_slot_create).
bool lock_stored(Relation rel, AttrNumber key_attnum, Datum key, TupleTableSlot* out);

// Replaces the row `locked` holds (lock_stored's) by `row`.
void store_update(Relation rel, TupleTableSlot* locked, HeapTuple row);

}  // namespace causal::pg
