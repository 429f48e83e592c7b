#include "infra/owner.hpp"

#include "infra/spi.hpp"

#include <cstring>

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/uuid.h"
}

namespace causal::pg {

namespace {

// The transaction nesting levels at which owner scopes were entered: an
// aborting (sub)transaction ends the scopes it entered.
constexpr int kMaxScopes = 8;
int scope_levels[kMaxScopes];
int scope_depth = 0;

struct OwnWrite {
    bool expected = false;  // announced, not taken by the BEFORE trigger yet
    bool taken = false;     // taken, not stored yet
    bool stored = false;
    int level = 0;
    Oid relid = InvalidOid;
    pg_uuid_t msg_id;
    HeapTuple written;  // lives as long as the statement that writes it
};
OwnWrite own_write;

bool same_write(Oid relid, Datum msg_id) {
    return own_write.relid == relid && std::memcmp(own_write.msg_id.data, DatumGetUUIDP(msg_id)->data, UUID_LEN) == 0;
}

void forget_aborted(int level) {
    while (scope_depth > 0 && scope_levels[scope_depth - 1] >= level) --scope_depth;
    if ((own_write.expected || own_write.taken) && own_write.level >= level) own_write = OwnWrite{};
}

void on_xact(XactEvent event, void*) {
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) forget_aborted(0);
}

void on_subxact(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    if (event == SUBXACT_EVENT_ABORT_SUB) forget_aborted(GetCurrentTransactionNestLevel());
}

}  // namespace

void owner_register_callbacks() {
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
}

bool in_owner_scope() { return scope_depth > 0; }

void expect_own_write(Oid relid, Datum msg_id, HeapTuple written) {
    own_write = OwnWrite{};
    own_write.expected = true;
    own_write.relid = relid;
    own_write.level = GetCurrentTransactionNestLevel();
    own_write.msg_id = *DatumGetUUIDP(msg_id);
    own_write.written = written;
}

HeapTuple take_own_write(Oid relid, Datum msg_id) {
    if (!own_write.expected || !same_write(relid, msg_id)) return nullptr;
    own_write.expected = false;
    own_write.taken = true;
    return own_write.written;
}

void own_write_stored(Oid relid, Datum msg_id) {
    if (!own_write.taken || !same_write(relid, msg_id)) return;
    own_write.taken = false;
    own_write.stored = true;
}

OwnWriteSeen end_own_write() {
    const OwnWriteSeen seen = {own_write.taken || own_write.stored, own_write.stored};
    own_write = OwnWrite{};
    return seen;
}

OwnerScope enter_owner_scope(Oid relid, OwnerOptions options) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);

    OwnerScope scope;
    GetUserIdAndSecContext(&scope.saved_user, &scope.saved_context);
    scope.guc_level = pin_search_path();
    // Set with pg_causal's rights (a superuser's, or the apply worker's),
    // before the switch; rolled back with the level.
    if (options.replica)
        (void)set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
                                GUC_ACTION_SAVE, true, 0, false);
    if (scope_depth == kMaxScopes) elog(ERROR, "pg_causal: owner scopes nested too deeply");
    scope_levels[scope_depth++] = GetCurrentTransactionNestLevel();
    SetUserIdAndSecContext(owner, scope.saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                      SECURITY_RESTRICTED_OPERATION);
    return scope;
}

void leave_owner_scope(const OwnerScope& scope) {
    --scope_depth;
    AtEOXact_GUC(false, scope.guc_level);
    SetUserIdAndSecContext(scope.saved_user, scope.saved_context);
}

}  // namespace causal::pg

// causal.run_as_owner(table, statement, replica): causal.enable()'s changes
// to a table, made as its owner. For superusers (enable() is SECURITY
// DEFINER): to anyone else it would hand another role's rights.
CAUSAL_FUNCTION(run_as_owner) {
    using namespace causal::pg;
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("causal.run_as_owner() is for pg_causal's own functions")));
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                                            errmsg("causal.run_as_owner() needs a table and a statement")));
    const Oid relid = PG_GETARG_OID(0);
    const char* statement = text_to_cstring(PG_GETARG_TEXT_PP(1));
    const bool replica = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
    SPI_connect();
    const OwnerScope scope = enter_owner_scope(relid, {replica});
    const int result = SPI_execute(statement, false, 0);
    leave_owner_scope(scope);
    if (result < 0) elog(ERROR, "pg_causal: %s: %s", SPI_result_code_string(result), statement);
    SPI_finish();
    PG_RETURN_VOID();
}
