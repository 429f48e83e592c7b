// Relay by pull (relay.cpp): a region that cannot hear a peer directly
// takes that peer's messages from the peers it hears. Wired by _PG_init
// when the library is preloaded.
#pragma once

namespace causal::pg {

void relay_register_worker();

}  // namespace causal::pg
