// The extension's GUCs (defined in pg_causal.cpp) and the checks that the
// clock functions make of them.
#pragma once

#include <cstdint>

namespace causal::pg {

extern int node_id_setting;          // causal.node_id, -1 when not set
extern char* region_setting;         // causal.region, "" when not set
extern int max_clock_offset_ms;      // causal.max_clock_offset
// causal.self_fence_after, causal.heartbeat_interval and
// causal.relay_after as configured: used only through liveness_timing()
// (mesh/liveness.hpp), which keeps them in their order.
extern int self_fence_after_setting;     // 0 = off
extern int heartbeat_interval_setting;
extern int relay_after_setting;          // 0 = off
extern char* liveness_database;      // causal.database
extern int max_hlc_lead_s;           // causal.max_hlc_lead
extern bool allow_drop_extension;    // causal.allow_drop_extension

// The node id to stamp; raises 55000 with a HINT when it is not set.
uint16_t require_node_id();
// The region name; raises 55000 with a HINT when it is not set.
const char* require_region();

}  // namespace causal::pg
