// Relay by pull (relay.cpp): a region that cannot hear a peer directly
// takes that peer's messages from the peers it hears.
#pragma once

namespace causal::pg {

// Keeps the relay worker of this database running, as the replication
// role: for the liveness worker's rounds (in a transaction, SPI connected).
// `installed`: the extension is in this database.
void relay_supervise(bool installed);

}  // namespace causal::pg
