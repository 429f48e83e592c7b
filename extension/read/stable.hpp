// This region's stable point: an hlc below which every message this region
// stamped has committed (or is gone). The liveness worker sends it with each
// heartbeat, replication carries it in commit order behind those messages,
// and so every region learns, for each peer, below which hlc it holds all of
// that peer's messages: causal.stable_hlc(), a client's cursor.
#pragma once

#include "core/hlc.hpp"
#include "infra/postgres.hpp"

namespace causal::pg {

void stable_request_shmem();
void stable_startup_shmem();

// Before a local write stamps a message: until this transaction ends, the
// stable point stays below that stamp. A no-op without shared memory.
void note_unfinished_stamp();

// Now: a clock tick (so it advances while the region is idle), lowered
// below every unfinished stamp.
Hlc local_stable();

}  // namespace causal::pg
