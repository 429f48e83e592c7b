// Relay by pull (relay.cpp): a region that cannot hear a peer directly
// takes that peer's messages from the peers it hears.
#pragma once

namespace causal::pg {

// Keeps the relay worker of this database running, as the replication
// role: for the liveness worker's rounds, in a database with the
// extension. relay_supervision_due() says, outside any transaction,
// whether relay_supervise() has anything to do; relay_supervise() runs in
// a transaction, SPI connected.
bool relay_supervision_due();
void relay_supervise();

// What the relay did since the server started (causal.relay_stats()), in
// shared memory.
void relay_request_shmem();
void relay_startup_shmem();

// Wakes the relay once this transaction commits: it asked for a pull
// (causal.request_pull()), or left the relay something to look for (a
// fence landed, a fenced deletion awaits its body).
void wake_relay_at_commit();

}  // namespace causal::pg
