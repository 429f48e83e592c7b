// Peer liveness from the replication streams, and self-fencing (see
// liveness.cpp). Hooks wired by _PG_init when the library is preloaded.
#pragma once

#include <cstdint>

#include "core/fencing.hpp"

namespace causal::pg {

void liveness_request_shmem();
void liveness_startup_shmem();
void liveness_register_worker();

// causal.heartbeat_interval, causal.relay_after and causal.self_fence_after
// as pg_causal uses them: in their order (fencing::effective_timing). The
// liveness worker warns of a configuration out of order at start and on
// reload.
fencing::Timing liveness_timing();

struct SelfFence {
    bool fenced;
    int heard;         // peers heard within causal.self_fence_after
    int regions;       // registered regions, this one included
    int64_t since_ms;  // how long it has been fenced
};

// Whether this region has fenced itself, cut off from the majority.
SelfFence self_fence();

// When this instance last heard `region`'s heartbeat change (its own clock,
// ms since the Unix epoch): 0 if not since it started, -1 if the liveness
// worker does not watch that region.
int64_t peer_heard_ms(const char* region);

// A peer this region is still catching up on (fencing::catching_up, judged
// by the liveness worker each round): the first such, by name, with how far
// behind its sender this region is; and a peer that is current here, the
// one heard last, for a reader to go to instead. Empty names: none. Reads
// shared memory only.
struct Backlog {
    char peer[64];
    int64_t lag_ms;
    char current_peer[64];
    bool unknown;  // the server started moments ago and the worker has not judged yet
};
Backlog peer_backlog();

// Whether this region is catching up on `region`'s backlog (as
// peer_backlog() judges it; nullptr: on any peer's). Shared memory only:
// callable outside a transaction. The relay pulls such a peer's last
// seconds from it meanwhile (relay.cpp).
bool replaying_backlog_of(const char* region);

// Whether this region is registered and some peer was not heard within
// `ms`: what the relay worker checks before it reads anything.
bool some_peer_unheard(int64_t ms);

}  // namespace causal::pg
