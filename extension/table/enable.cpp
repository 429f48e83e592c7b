// What causal.enable() (sql/enable.sql, SECURITY DEFINER) needs of C.
//
// enable() acts on a table that an untrusted role owns, with pg_causal's
// rights. So it locks the table before it looks at it (a check made before
// the lock would judge a table its owner can change until the lock is
// granted: into a view whose rule then runs as enable()'s definer), judges
// it by the catalog as it is under the lock, and reads its rows as its
// owner, without SQL: a scan of the heap runs nobody's code.

#include "infra/owner.hpp"
#include "infra/postgres.hpp"
#include "table/table_shape.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

namespace {

void require_superuser(const char* function) {
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("%s is for pg_causal's own functions", function)));
}

}  // namespace

// causal.lock_for_enable(table): takes the table's ACCESS EXCLUSIVE lock,
// then checks, of the table as it is under the lock, what enable() asks of
// its caller: a plain table of an ordinary schema, not a superuser's unless
// the caller is one, in a schema the caller may use (it names the table by
// OID, which skips the lookup that would check that).
CAUSAL_FUNCTION(lock_for_enable) {
    require_superuser("causal.lock_for_enable()");
    const Oid relid = PG_GETARG_OID(0);
    LockRelationOid(relid, AccessExclusiveLock);
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    const FormData_pg_class rel = *reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple));
    ReleaseSysCache(tuple);
    // As enable() names it (regclass: qualified unless on the pinned path).
    const char* name = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid)));
    // The role that called enable(), not its definer.
    const Oid caller = GetOuterUserId();
    if (rel.relkind == RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot enable partitioned table %s", name),
                        errdetail("Causal message tables are plain tables in this version.")));
    if (rel.relkind != RELKIND_RELATION)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", name)));
    if (relid < FirstNormalObjectId || rel.relnamespace == PG_CATALOG_NAMESPACE ||
        rel.relnamespace == PG_TOAST_NAMESPACE || rel.relnamespace == causal::pg::causal_namespace() ||
        rel.relnamespace == get_namespace_oid("information_schema", true))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("cannot enable %s: it belongs to the system or to pg_causal", name)));
    if (pg_namespace_aclcheck(rel.relnamespace, caller, ACL_USAGE) != ACLCHECK_OK)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("cannot enable %s: permission denied for schema %s", name,
                               get_namespace_name(rel.relnamespace))));
    if (superuser_arg(rel.relowner) && !superuser_arg(caller))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("cannot enable %s: it belongs to a superuser", name),
                        errdetail("enable() changes a table with pg_causal's rights; a superuser's table is a "
                                  "superuser's to enable.")));
    PG_RETURN_VOID();
}

// causal.unstamped_rows(table): whether a row of the table lacks its
// msg_id, hlc or deps (rows from before enable()), read as the table's
// owner, by a scan of the heap under the lock enable() holds.
CAUSAL_FUNCTION(unstamped_rows) {
    using namespace causal::pg;
    require_superuser("causal.unstamped_rows()");
    const Oid relid = PG_GETARG_OID(0);
    Relation rel = table_open(relid, AccessExclusiveLock);
    AttrNumber stamp[3];
    int stamps = 0;
    for (const char* column : {"msg_id", "hlc", "deps"}) {
        const AttrNumber attnum = get_attnum(relid, column);
        if (attnum == InvalidAttrNumber) {
            // A column enable() has not added yet: every row lacks it.
            stamps = -1;
            break;
        }
        stamp[stamps++] = attnum;
    }
    const OwnerScope scope = enter_owner_scope(relid);
    bool unstamped = false;
    TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    while (!unstamped && table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        if (stamps < 0) {
            unstamped = true;
            break;
        }
        for (int i = 0; i < stamps && !unstamped; ++i) unstamped = slot_attisnull(slot, stamp[i]);
    }
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    leave_owner_scope(scope);
    table_close(rel, NoLock);
    PG_RETURN_BOOL(unstamped);
}
