// Running SQL as a table's owner.
//
// What pg_causal does to a message table with rights of its own (the apply
// worker's, a superuser's in causal.enable()) fires code the table's owner
// controls: triggers, CHECK constraints, index expressions, casts to json.
// That code must never run with more rights than the owner has. PostgreSQL
// runs index builds, VACUUM and REFRESH MATERIALIZED VIEW the same way (and
// PostgreSQL 16's subscriptions, by default): as the owner, in a
// security-restricted operation, with every setting a callee changes rolled
// back afterwards.
#pragma once

#include "infra/postgres.hpp"

extern "C" {
#include "access/htup.h"
}

namespace causal::pg {

struct OwnerScope {
    Oid saved_user;
    int saved_context;
    int guc_level;
};

struct OwnerOptions {
    bool replica = false;  // session_replication_role = replica: no ORIGIN triggers fire
};

// From enter_owner_scope() to leave_owner_scope() the current user is the
// owner of `relid` and search_path is pinned. An error in between needs no
// leaving: the aborting (sub)transaction restores the user and the settings.
OwnerScope enter_owner_scope(Oid relid, OwnerOptions options = {});
void leave_owner_scope(const OwnerScope& scope);

// Inside an owner scope runs code the owner controls, and a message table's
// trigger must tell pg_causal's own write (the row it stores, which passes
// as written) from anything that code writes (refused: in the apply worker
// it would pass for a replicated row, with any stamp). The writer announces
// its row before it stores it; the BEFORE trigger of that table takes the
// announcement once, by msg_id, and gets the row as written to compare with
// what reached it (the owner's triggers fire first); the AFTER trigger says
// the row was stored (a trigger of the owner's that fires later could have
// skipped it). end_own_write() tells how far the row got: an UPDATE has no
// AFTER trigger of pg_causal's, so for it `taken` is the most there is.
bool in_owner_scope();
void expect_own_write(Oid relid, Datum msg_id, HeapTuple written);
HeapTuple take_own_write(Oid relid, Datum msg_id);
void own_write_stored(Oid relid, Datum msg_id);
struct OwnWriteSeen {
    bool taken;   // pg_causal's BEFORE trigger saw it
    bool stored;  // and its AFTER trigger too
};
OwnWriteSeen end_own_write();

// Resets the above when the (sub)transaction that set them aborts.
void owner_register_callbacks();

}  // namespace causal::pg
