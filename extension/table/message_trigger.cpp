// The triggers of a causal message table, as causal.enable() creates them,
// ENABLE ALWAYS so that both write paths run them:
//   causal_message           BEFORE INSERT OR UPDATE OR DELETE, each row
//   causal_message_stored    AFTER INSERT OR DELETE, each row
//   causal_message_truncate  BEFORE TRUNCATE
// They dispatch to the local path (an ordinary session, local_path.cpp) or
// the apply path (the replication apply worker, session_replication_role =
// replica, apply_path.cpp).

#include "table/notify.hpp"
#include "infra/owner.hpp"
#include "table/paths.hpp"
#include "mesh/regions.hpp"
#include "infra/subtransaction.hpp"
#include "table/table_stats.hpp"

extern "C" {
#include "utils/datum.h"
}

namespace causal::pg {

namespace {

bool applying() { return SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA; }

// pg_causal's own write (the row the apply path or a DELETE stores) passes
// as it is. Any other write made while pg_causal runs a table owner's code
// is that code's: in the apply worker it would pass for a replicated row,
// with whatever stamp it chose.
void refuse_owner_code(const Firing& t) {
    if (in_owner_scope())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("a table owner's code cannot write to causal message table \"%s\" while pg_causal "
                               "stores a message",
                               RelationGetRelationName(t.rel))));
}

// Whether the stamp of `row` (pg_causal's columns and the conversation,
// and written_by, which decides where the row is published) is the one
// pg_causal wrote: the owner's triggers, which fire before ours, must not
// have changed it.
bool same_stamp(const Firing& t, HeapTuple row, HeapTuple written) {
    for (int i = 0; i < t.desc->natts; ++i) {
        const Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        if (attribute->attisdropped ||
            !(is_stamp_column(t, attribute->attnum) || attribute->attnum == t.columns.written_by))
            continue;
        bool row_null = false, written_null = false;
        const Datum a = get(t, row, attribute->attnum, &row_null);
        const Datum b = get(t, written, attribute->attnum, &written_null);
        if (row_null != written_null ||
            (!row_null && !datum_image_eq(a, b, attribute->attbyval, attribute->attlen)))
            return false;
    }
    return true;
}

bool own_write(const Firing& t, HeapTuple row) {
    bool isnull = true;
    const Datum msg_id = t.problem ? Datum(0) : get(t, row, t.columns.msg_id, &isnull);
    HeapTuple written = isnull ? nullptr : take_own_write(RelationGetRelid(t.rel), msg_id);
    if (written != nullptr) {
        if (!same_stamp(t, row, written))
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("a trigger changed the stamp of a row pg_causal stores in \"%s\"",
                                   RelationGetRelationName(t.rel)),
                            errdetail("A message's msg_id, hlc, deps, crdb_region, epoch, deleted_at, written_by "
                                      "and conversation are pg_causal's to set.")));
        return true;
    }
    refuse_owner_code(t);
    return false;
}

// After the row is stored: count it, and tell listeners. Nothing here
// raises for the row (notify.hpp); what can fail, the fence list read after
// a change, fails for every row alike, and the apply worker retries.
void row_stored(const Firing& t) {
    HeapTuple row = t.data->tg_trigtuple;
    const Oid relid = RelationGetRelid(t.rel);
    if (t.problem == nullptr) {
        bool isnull = false;
        const Datum msg_id = get(t, row, t.columns.msg_id, &isnull);
        if (!isnull) own_write_stored(relid, msg_id);
    }
    if (t.problem != nullptr) {
        if (applying()) count(relid, Counter::Applied);
        return;
    }
    const bool tombstone = get_deleted_at(t, row).has_value();
    const Hlc hlc = *get_hlc(t, row);
    if (!applying()) {
        if (!tombstone) count(relid, Counter::LocalInserts);
        if (t.notify) notify_row(t, row, tombstone ? NotifyKind::Deleted : NotifyKind::Message);
        return;
    }
    count(relid, Counter::Applied);
    bool isnull = false;
    const Datum region = get(t, row, t.columns.region, &isnull);
    const Datum epoch = get(t, row, t.columns.epoch, &isnull);
    const bool orphan = fenced_write(TextDatumGetCString(region), DatumGetInt64(epoch), hlc);
    if (orphan) count(relid, Counter::Orphans);
    if (t.notify)
        notify_row(t, row, tombstone ? NotifyKind::Deleted : orphan ? NotifyKind::Orphan : NotifyKind::Message);
}

}  // namespace
}  // namespace causal::pg

CAUSAL_FUNCTION(message_trigger) {
    using namespace causal::pg;
    const Firing t = read_trigger(fcinfo, true);
    const TriggerEvent event = t.data->tg_event;
    if (TRIGGER_FIRED_BY_DELETE(event)) {
        refuse_owner_code(t);
        return PointerGetDatum(applying() ? apply_delete(t) : local_delete(t));
    }
    HeapTuple row = TRIGGER_FIRED_BY_INSERT(event) ? t.data->tg_trigtuple : t.data->tg_newtuple;
    if (own_write(t, row)) return PointerGetDatum(row);
    if (TRIGGER_FIRED_BY_INSERT(event)) return PointerGetDatum(applying() ? apply_insert(t) : local_insert(t));
    return PointerGetDatum(applying() ? apply_update(t) : local_update(t));
}

CAUSAL_FUNCTION(message_stored) {
    using namespace causal::pg;
    const Firing t = read_trigger(fcinfo, false);
    if (TRIGGER_FIRED_BY_DELETE(t.data->tg_event)) {
        if (!applying() && t.problem == nullptr) write_tombstone(t);
    } else {
        row_stored(t);
    }
    return PointerGetDatum(nullptr);
}

// TRUNCATE of a message table would replicate and wipe every region, or,
// not replicated, silently leave this region without what the others keep.
// Refused on both paths: on the apply path an error stops the subscription,
// which is loud and can be mended, where applying it would lose messages.
CAUSAL_FUNCTION(message_truncate) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("causal.message_truncate() must be called as a trigger")));
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("cannot truncate causal message table \"%s\"", RelationGetRelationName(data->tg_relation)),
                    errdetail("Messages are kept in every region: TRUNCATE would either wipe them all or leave "
                              "this region without what the others hold."),
                    errhint("DELETE removes messages everywhere (each leaves a tombstone). To empty this region "
                            "alone, an admin runs causal.disable() on the table first.")));
    PG_RETURN_NULL();
}
