// What the apply path cannot take goes to causal.quarantine instead of
// raising, which would stop replication for good.
#pragma once

#include "table/message_table.hpp"

namespace causal::pg {

// Stores the row in causal.quarantine with the reason and counts it. Raises
// only when the quarantine itself cannot take it, so that the apply worker
// retries instead of losing the row.
void quarantine(const Firing& t, HeapTuple row, const char* reason);

}  // namespace causal::pg
