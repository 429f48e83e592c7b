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
//
// A writer that found nobody listening has marked its transaction first;
// a session's first LISTEN waits for the marked transactions still running,
// so that whatever they wrote is in the snapshot the listener takes next:
// LISTEN, then read, misses nothing. A marked transaction cannot be
// prepared (its messages would never be announced), as one that notified
// cannot.
#pragma once

#include "infra/postgres.hpp"

namespace causal::pg {

void listeners_request_shmem();
void listeners_startup_shmem();
void listeners_install_hook();

// Whether to announce a message now: whether a session of this database may
// be listening. Called by a transaction that has written (it has an xid).
// True without shared memory (not preloaded).
bool someone_may_listen();

}  // namespace causal::pg
