// Whether the apply worker may insert a replicated row itself. The apply
// path's general way stores each row as the table's owner, in a
// subtransaction (apply_path.cpp): no row can stop replication, and no
// owner's code runs with the worker's rights. For a table where inserting
// the row runs no code but PostgreSQL's own and cannot fail for this row
// alone, neither is needed, and a new message, the common case, is left to
// the worker's own insert: no second executor run, no subtransaction.
#pragma once

#include "table/message_table.hpp"

namespace causal::pg {

// True when every one of these holds, read from the catalogs once per table
// and again after it changes:
//  * the table is within the shape of a message table (table_shape.hpp);
//  * no CHECK constraint, no generated column, no exclusion constraint;
//  * no trigger the worker fires on INSERT or UPDATE (ENABLE ALWAYS or
//    REPLICA) but pg_causal's own;
//  * every index is on plain columns (no expression but enable()'s
//    causal.latest_stamp(hlc, deleted_at, copies), no predicate but
//    enable()'s `deleted_at IS NOT NULL`), unique
//    only on msg_id (the replica identity), and holds only fixed-length
//    columns and the conversation, which pg_causal's own index in the
//    sending region held already (no value is too large for it here).
// `trigger_function`: the function of the trigger firing now.
bool table_takes_rows_directly(const Firing& t, Oid trigger_function);

// Whether `row` has a NULL in a NOT NULL column.
bool breaks_not_null(const Firing& t, HeapTuple row);

}  // namespace causal::pg
