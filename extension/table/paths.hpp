// The two write paths of a causal message table (see message_trigger.cpp).
#pragma once

#include "table/message_table.hpp"

namespace causal::pg {

// An ordinary session: refuse writes this region may not take, stamp.
HeapTuple local_insert(const Firing& t);
HeapTuple local_update(const Firing& t);
HeapTuple local_delete(const Firing& t);
// After a local DELETE: the message's tombstone takes its place.
void write_tombstone(const Firing& t);

// The logical replication apply worker: never raises for a row.
HeapTuple apply_insert(const Firing& t);
HeapTuple apply_update(const Firing& t);
HeapTuple apply_delete(const Firing& t);

}  // namespace causal::pg
