// Who may be listening, so that NOTIFY is sent only where someone is.
//
// A transaction that has queued a NOTIFY takes, at commit, a lock that every
// notifying transaction of the instance takes: writers and apply workers
// commit one at a time behind it. A message table with notify => true
// therefore announces a message only while some session of its database
// has run LISTEN (on any channel): shared memory counts such sessions per
// database, from their first LISTEN until UNLISTEN * or DISCARD ALL commits,
// or until they exit. The count may be too high (another database sharing
// the slot, a LISTEN whose transaction rolled back), never too low.
#pragma once

#include "postgres.hpp"

namespace causal::pg {

void listeners_request_shmem();
void listeners_startup_shmem();
void listeners_install_hook();

// Whether a session of this database may be listening. Called by a
// transaction that has written (and so has an xid): a session that starts
// listening waits for every such transaction still running before its LISTEN
// returns, so a message committed after the listener's next snapshot is
// always announced to it. True without shared memory (not preloaded).
bool someone_may_listen();

}  // namespace causal::pg
