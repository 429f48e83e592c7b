// What the apply path cannot take goes to causal.quarantine instead of
// raising, which would stop replication for good.
#pragma once

#include "message_table.hpp"

namespace causal::pg {

// Stores the row in causal.quarantine with the reason and counts it; when
// even that fails, logs the row's text. Never raises.
void quarantine(const Firing& t, HeapTuple row, const char* reason);

}  // namespace causal::pg
