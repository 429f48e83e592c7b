// The apply path of a causal message table: rows the logical replication
// apply worker (session_replication_role = replica) brings from other
// regions. Deduplicate (this ends the relay loops of the full mesh), keep one
// row per msg_id by the copy rule (src/core/copies.hpp), observe the remote
// hlc. No row can stop replication: what is wrong with a row sends it to
// causal.quarantine; only what a retry of the whole transaction can fix is
// raised (retry_can_fix()).
//
// The rows are stored by pg_causal itself, as the table's owner (owner.hpp),
// through the executor as the apply worker would store them (store.hpp),
// so that the owner's code they fire (CHECK constraints, index expressions)
// never runs with more rights than the owner's; the worker's own insert or
// update is skipped. A table whose shape runs no code but a superuser's
// (direct_store.hpp) leaves a new row to the worker's own insert.

#include "core/clock.hpp"
#include "core/copies.hpp"
#include "hlc/clock.hpp"
#include "table/direct_store.hpp"
#include "table/fenced_deletions.hpp"
#include "hlc/hlc_datum.hpp"
#include "table/notify.hpp"
#include "infra/owner.hpp"
#include "table/paths.hpp"
#include "table/quarantine.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "table/stamps.hpp"
#include "table/store.hpp"
#include "infra/subtransaction.hpp"
#include "table/table_stats.hpp"

extern "C" {
#include "access/genam.h"
#include "access/xact.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"
}

#include <cstring>

namespace causal::pg {

int max_hlc_lead_s = 60;

namespace {

// Two apply workers delivering one msg_id at once (it arrives by every path
// of the mesh) take turns: the second finds the first's row and applies the
// copy rule to it, instead of failing on the unique index, which would stop
// its subscription. The lock is needed only from before find_stored() until
// this writer's row is in the msg_id index: from then on, find_stored() in
// any other writer waits for this transaction. So a writer holds one at a
// time, released when it takes the next (by then the executor has stored
// the row before), and a bulk transaction, a region's initial copy, takes
// as many as it has rows without filling the lock table.
//
// A session lock, so that releasing it early does not depend on which
// resource owner (subtransaction) took it; the transaction's end releases
// whatever is left.
struct MsgIdLock {
    LOCKTAG tag;
    bool held = false;
};
MsgIdLock msg_id_lock;

void unlock_msg_id() {
    if (!msg_id_lock.held) return;
    msg_id_lock.held = false;
    LockRelease(&msg_id_lock.tag, ExclusiveLock, true);
}

void unlock_msg_id_at_end(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PRE_PREPARE:
            unlock_msg_id();
            break;
        default:
            break;
    }
}

void lock_msg_id(Datum msg_id) {
    static bool registered = false;
    if (!registered) {
        RegisterXactCallback(unlock_msg_id_at_end, nullptr);
        registered = true;
    }
    unlock_msg_id();
    // An advisory lock tag of pg_causal's own (the built-in functions use
    // 1 and 2 in its last field), so that no application lock collides.
    constexpr uint16 kMsgIdLockSpace = 0x4343;
    uint32 key[2];
    std::memcpy(key, DatumGetUUIDP(msg_id)->data + 8, sizeof key);  // the random half
    SET_LOCKTAG_ADVISORY(msg_id_lock.tag, MyDatabaseId, key[0], key[1], kMsgIdLockSpace);
    (void)LockAcquire(&msg_id_lock.tag, ExclusiveLock, true, false);
    msg_id_lock.held = true;
}

struct Stored {
    bool found;
    HeapTuple row;  // a copy
};

// The row with this msg_id, through the msg_id index (the replica identity)
// with a dirty snapshot: a row another transaction is inserting or replacing
// right now is waited for, as the unique index itself would, so that this
// insert never runs into it.
Stored find_stored(const Firing& t, Datum msg_id) {
    const Oid index_oid = RelationGetReplicaIndex(t.rel);
    if (!OidIsValid(index_oid))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the replica identity of \"%s\" is not its msg_id index", RelationGetRelationName(t.rel)),
                        errhint("Run causal.enable() on the table again.")));
    Relation index = index_open(index_oid, AccessShareLock);
    TupleTableSlot* slot = table_slot_create(t.rel, nullptr);
    Stored stored = {false, nullptr};
    for (;;) {
        SnapshotData dirty;
        InitDirtySnapshot(dirty);
        ScanKeyData key;
        ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, msg_id);
        IndexScanDesc scan = index_beginscan(t.rel, index, &dirty, 1, 0);
        index_rescan(scan, &key, 1, nullptr, 0);
        TransactionId in_progress = InvalidTransactionId;
        ItemPointerData tid;
        if (index_getnext_slot(scan, ForwardScanDirection, slot)) {
            in_progress = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
            tid = slot->tts_tid;
            if (!TransactionIdIsValid(in_progress)) {
                stored.found = true;
                stored.row = ExecCopySlotHeapTuple(slot);
            }
        }
        index_endscan(scan);
        if (!TransactionIdIsValid(in_progress)) break;
        XactLockTableWait(in_progress, t.rel, &tid, XLTW_InsertIndexUnique);
    }
    ExecDropSingleTupleTableSlot(slot);
    index_close(index, AccessShareLock);
    return stored;
}

// Writes the row as the table's owner: `locked` (lock_stored()'s) is the
// stored row it replaces, or nullptr for a new msg_id.
void write_row(const Firing& t, HeapTuple row, Datum msg_id, TupleTableSlot* locked) {
    const Oid relid = RelationGetRelid(t.rel);
    const OwnerScope scope = enter_owner_scope(relid);
    expect_own_write(relid, msg_id, row);
    if (locked != nullptr)
        store_update(t.rel, locked, row);
    else
        store_insert(t.rel, row);
    const OwnWriteSeen seen = end_own_write();
    leave_owner_scope(scope);
    if (!(locked != nullptr ? seen.taken : seen.stored))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("a trigger kept pg_causal from storing a replicated message in \"%s\"",
                               RelationGetRelationName(t.rel))));
}

// The row a region holding `stored` keeps when `incoming` arrives, by the
// copy rule: the stamp of the smallest hlc (with its conversation) in the
// row's own columns, every other copy's stamp in `copies`, and the body of
// the head copy or, once deleted, of a tombstone, whose body is erased.
HeapTuple combined_row(const Firing& t, HeapTuple stored, const Stamps& stored_stamps, HeapTuple incoming,
                       const Stamps& incoming_stamps, const copies::Resolution& r, const Hlc* names) {
    const int n = t.desc->natts;
    auto* values = static_cast<Datum*>(palloc(sizeof(Datum) * n));
    auto* nulls = static_cast<bool*>(palloc(sizeof(bool) * n));
    heap_deform_tuple(r.stamp_from_incoming ? incoming : stored, t.desc, values, nulls);
    HeapTuple body = r.body_from_incoming ? incoming : stored;
    for (int i = 0; i < n; ++i) {
        const AttrNumber attnum = static_cast<AttrNumber>(i + 1);
        if (TupleDescAttr(t.desc, i)->attisdropped || is_stamp_column(t, attnum)) continue;
        values[i] = get(t, body, attnum, &nulls[i]);
    }
    nulls[t.columns.deleted_at - 1] = !r.deleted_at;
    values[t.columns.deleted_at - 1] = r.deleted_at ? hlc_datum(*r.deleted_at) : Datum(0);
    // names[0] heads the row; every other name's stamp, from whichever side has it.
    auto* others = static_cast<Stamp*>(palloc(sizeof(Stamp) * (r.count + 1)));
    int count = 0;
    for (size_t k = 1; k < r.count; ++k) {
        const Stamp* found = nullptr;
        for (const Stamps* side : {&stored_stamps, &incoming_stamps})
            for (int i = 0; i < side->count && !found; ++i)
                if (side->items[i].hlc == names[k]) found = &side->items[i];
        others[count++] = *found;
    }
    values[t.columns.copies - 1] = copies_datum(t, others, count);
    nulls[t.columns.copies - 1] = false;
    return heap_form_tuple(t.desc, values, nulls);
}

// What makes a replicated row impossible to take as a message, or nullptr.
const char* malformed(const Firing& t, HeapTuple row, const Deps& deps, const Stamps& stamps) {
    bool isnull = false;
    if ((get(t, row, t.columns.msg_id, &isnull), isnull)) return "msg_id is NULL";
    if ((get(t, row, t.columns.conversation, &isnull), isnull)) return "the conversation is NULL";
    if ((get(t, row, t.columns.region, &isnull), isnull)) return "crdb_region is NULL";
    if ((get(t, row, t.columns.epoch, &isnull), isnull)) return "epoch is NULL";
    const Hlc* hlc = get_hlc(t, row);
    if (hlc == nullptr) return "hlc is NULL";
    if (deps.problem != nullptr) return deps.problem;
    if (deps.max != nullptr && compare(*deps.max, *hlc) >= 0) return "a dep is not older than the message itself";
    if (stamps.problem != nullptr) return stamps.problem;
    // pg_causal heads every row it writes with its smallest copy.
    if (stamps.items[0].hlc != *hlc) return "a copy is older than the row's own stamp";
    // No clock of the mesh can be this far ahead: kept, such a row would sort
    // after every message to come, for good.
    const uint64_t now = system_wall_ms();
    const uint64_t lead_ms = static_cast<uint64_t>(max_hlc_lead_s) * 1000;
    for (int i = 0; i < stamps.count; ++i)
        if (stamps.items[i].hlc.physical_ms() > now + lead_ms)
            return psprintf("its hlc %s is more than causal.max_hlc_lead (%d s) ahead of this region's clock",
                            hlc_text(stamps.items[i].hlc), max_hlc_lead_s);
    return nullptr;
}

// Whether a retry of the whole transaction can fix what went wrong: a
// deadlock or serialization failure, the server short of memory or disk, a
// cancel or shutdown, a lock or the clock not available yet, a lost
// connection. Such an error is raised again, and the worker retries later.
// Anything else is a problem of this row (bad data, a broken constraint, an
// error the table owner's code raised, a write the owner may not make) and
// quarantines it: raised, it would stop the subscription, every table's
// replication with it, for good.
bool retry_can_fix(const ErrorData* error) {
    // RAISE in PL/pgSQL: the table owner's code, whatever SQLSTATE it says.
    if (error->funcname != nullptr && std::strcmp(error->funcname, "exec_stmt_raise") == 0) return false;
    switch (ERRCODE_TO_CATEGORY(error->sqlerrcode)) {
        case ERRCODE_CONNECTION_EXCEPTION:           // 08
        case ERRCODE_TRANSACTION_ROLLBACK:           // 40
        case ERRCODE_INSUFFICIENT_RESOURCES:         // 53
        case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:  // 55
        case ERRCODE_OPERATOR_INTERVENTION:          // 57
        case ERRCODE_SYSTEM_ERROR:                   // 58
            return true;
        default:
            return false;
    }
}

// The unique index on msg_id refused the insert: another transaction
// stored a copy of this msg_id since find_stored() looked.
bool lost_race_to_duplicate(const Firing& t, const ErrorData* error) {
    if (error->sqlerrcode != ERRCODE_UNIQUE_VIOLATION || error->constraint_name == nullptr) return false;
    const char* msg_id_index = get_rel_name(RelationGetReplicaIndex(t.rel));
    return msg_id_index != nullptr && std::strcmp(error->constraint_name, msg_id_index) == 0;
}

// A replicated row as received: well formed, its sender's clock observed.
struct Received {
    Datum msg_id;
    Stamps stamps;
};

// The receive event: checks `incoming` (a malformed row is quarantined, and
// false returned) and observes its newest copy's hlc. Raises nothing for
// the row itself.
bool receive(const Firing& t, HeapTuple incoming, Received* out) {
    const Deps deps = read_deps(t, incoming);
    out->stamps = read_stamps(t, incoming);
    if (const char* problem = malformed(t, incoming, deps, out->stamps)) {
        quarantine(t, incoming, problem);
        return false;
    }
    // For every well-formed row: even a duplicate proves that its sender's
    // clock got this far.
    if (!clock_observe(out->stamps.items[out->stamps.count - 1].hlc).adopted)
        count(RelationGetRelid(t.rel), Counter::OffsetRejections);
    bool isnull = false;
    out->msg_id = get(t, incoming, t.columns.msg_id, &isnull);
    return true;
}

// The copy rule (src/core/copies.hpp) between the row stored for a msg_id
// and a copy that arrives.
// A deletion is judged with the fences as they stand now, on both sides:
// one applied here before its fence arrived deletes nothing from then on.
struct CopyRule {
    Stamps stored_stamps;
    std::optional<Hlc> stored_deleted;
    bool stored_fenced, incoming_fenced;
    Hlc* names;
    copies::Resolution r;
};
CopyRule copy_rule(const Firing& t, HeapTuple stored, HeapTuple incoming, const Stamps& incoming_stamps) {
    CopyRule rule;
    rule.stored_stamps = read_stamps(t, stored);
    rule.stored_deleted = get_deleted_at(t, stored);
    rule.stored_fenced = deletion_fenced(t, stored, rule.stored_deleted);
    const std::optional<Hlc> incoming_deleted = get_deleted_at(t, incoming);
    rule.incoming_fenced = deletion_fenced(t, incoming, incoming_deleted);
    rule.names = static_cast<Hlc*>(palloc(sizeof(Hlc) * (rule.stored_stamps.count + incoming_stamps.count)));
    rule.r = copies::resolve(names_of(rule.stored_stamps, rule.stored_deleted, rule.stored_fenced),
                             names_of(incoming_stamps, incoming_deleted, rule.incoming_fenced), rule.names);
    return rule;
}

// What a fenced deletion that arrives did here, by the row the rule keeps.
FencedDeletion outcome(const copies::Resolution& r) {
    if (!r.deleted_at) return FencedDeletion::Kept;
    return r.deletion_fenced ? FencedDeletion::AwaitingBody : FencedDeletion::Erased;
}

// The records of fenced deletions, once the rule has kept its row: the
// incoming one's, and what became of the stored one's.
void record_fenced_deletions(const Firing& t, HeapTuple incoming, Datum msg_id, const CopyRule& rule) {
    if (rule.incoming_fenced) note_fenced_deletion(t, incoming, outcome(rule.r));
    if (rule.stored_fenced && !rule.r.deletion_fenced)
        settle_fenced_deletion(t, msg_id, rule.r.deleted_at ? FencedDeletion::Erased : FencedDeletion::Restored);
}

// A fenced region's tombstone of a message this region did not hold: stored
// as it came, erased, until a live copy brings the body (the relay asks).
void note_if_fenced_tombstone(const Firing& t, HeapTuple incoming) {
    const std::optional<Hlc> deleted_at = get_deleted_at(t, incoming);
    if (deleted_at && deletion_fenced(t, incoming, deleted_at))
        note_fenced_deletion(t, incoming, FencedDeletion::AwaitingBody);
}

// Brings `incoming` into the table: stores it, or applies the copy rule to
// the row stored for its msg_id. `stored_row` is the row to compare with
// when the caller already has it (an UPDATE); `received`, the receive event
// when the caller has had it.
//
// `direct`: the table takes rows directly (direct_store.hpp), and this runs
// outside any subtransaction: nothing may raise for the row, so a row its
// NOT NULL columns refuse is quarantined first. Otherwise apply() runs this
// in a subtransaction and catches what it raises.
void take_copy(const Firing& t, HeapTuple incoming, HeapTuple stored_row, const Received* received, bool direct) {
    const Oid relid = RelationGetRelid(t.rel);
    Received fresh;
    if (received == nullptr) {
        if (!receive(t, incoming, &fresh)) return;
        received = &fresh;
    }
    const Datum msg_id = received->msg_id;
    const Stamps& incoming_stamps = received->stamps;
    Stored stored = {stored_row != nullptr, stored_row};
    if (!stored.found) {
        lock_msg_id(msg_id);
        stored = find_stored(t, msg_id);
    }
    if (!stored.found) {
        if (direct && breaks_not_null(t, incoming)) {
            quarantine(t, incoming, "a NOT NULL column of this table is NULL in the row");
            return;
        }
        // Directly, a local insert of the msg_id since find_stored() makes
        // this one fail on the unique index: the worker retries the
        // transaction, and the copy rule then meets the stored row.
        write_row(t, incoming, msg_id, nullptr);
        note_if_fenced_tombstone(t, incoming);
        return;
    }
    // Most copies change nothing: that is found without the row's lock.
    if (const CopyRule unlocked = copy_rule(t, stored.row, incoming, incoming_stamps); !unlocked.r.changes) {
        record_fenced_deletions(t, incoming, msg_id, unlocked);
        count(relid, Counter::Duplicates);
        return;
    }
    // The row is rewritten under its lock, from its newest version.
    TupleTableSlot* locked = table_slot_create(t.rel, nullptr);
    if (!lock_stored(t.rel, t.columns.msg_id, msg_id, locked))
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("a replicated message's msg_id was stored and is gone again"),
                        errdetail("The apply worker retries the transaction.")));
    HeapTuple current = ExecCopySlotHeapTuple(locked);
    const CopyRule rule = copy_rule(t, current, incoming, incoming_stamps);
    if (!rule.r.changes) {
        ExecDropSingleTupleTableSlot(locked);
        record_fenced_deletions(t, incoming, msg_id, rule);
        count(relid, Counter::Duplicates);
        return;
    }
    HeapTuple row = combined_row(t, current, rule.stored_stamps, incoming, incoming_stamps, rule.r, rule.names);
    if (direct && breaks_not_null(t, row)) {
        ExecDropSingleTupleTableSlot(locked);
        quarantine(t, incoming, "a NOT NULL column of this table would be NULL in the row the copy rule keeps");
        return;
    }
    write_row(t, row, msg_id, locked);
    ExecDropSingleTupleTableSlot(locked);
    record_fenced_deletions(t, incoming, msg_id, rule);
    count(relid, Counter::WinnersReplaced);
    const bool was_deleted = rule.stored_deleted && !rule.stored_fenced;
    if (t.notify && rule.r.deleted_at && !rule.r.deletion_fenced && !was_deleted)
        notify_row(t, row, NotifyKind::Deleted);
}

// Whether the apply worker may insert a replicated row itself and leave
// this row's storing and its copy rule outside a subtransaction.
bool direct(const Firing& t) { return table_takes_rows_directly(t, t.function); }

// take_copy(), directly or in a subtransaction: there, a row problem
// quarantines `incoming`, anything else is raised again. A copy of the
// msg_id stored by a local insert between find_stored() and the insert is
// no broken row: the rule is applied again, to the row now stored,
// so that every writer of a msg_id meets it.
void apply(const Firing& t, HeapTuple incoming, HeapTuple stored_row, const Received* received = nullptr) {
    if (direct(t)) {
        take_copy(t, incoming, stored_row, received, true);
        return;
    }
    constexpr int kAttempts = 8;
    for (int attempt = 1;; ++attempt) {
        ErrorData* error = nullptr;
        if (in_subtransaction([&] { take_copy(t, incoming, stored_row, received, false); }, &error)) return;
        (void)end_own_write();
        if (lost_race_to_duplicate(t, error) && attempt < kAttempts) {
            FreeErrorData(error);
            stored_row = nullptr;  // read it again
            continue;
        }
        if (retry_can_fix(error) || lost_race_to_duplicate(t, error)) ReThrowError(error);
        quarantine(t, incoming, error->message);
        return;
    }
}

}  // namespace

// A new message into a table that takes rows directly (direct_store.hpp) is
// left to the worker's own insert: no second executor run, no
// subtransaction. The msg_id lock keeps every other apply worker out until
// the row is in the index. A local insert takes no lock: one of the same
// msg_id in between, a client's retry at that moment, makes the worker's
// insert fail on the unique index; the worker retries the transaction, and
// the copy rule then meets the stored row.
HeapTuple apply_insert(const Firing& t) {
    HeapTuple incoming = t.data->tg_trigtuple;
    if (t.problem != nullptr) {
        quarantine(t, incoming, t.problem);
        return nullptr;
    }
    if (direct(t) && !breaks_not_null(t, incoming)) {
        Received received;
        if (!receive(t, incoming, &received)) return nullptr;
        lock_msg_id(received.msg_id);
        const Stored stored = find_stored(t, received.msg_id);
        if (!stored.found) {
            note_if_fenced_tombstone(t, incoming);
            return incoming;
        }
        apply(t, incoming, stored.row, &received);
        return nullptr;
    }
    apply(t, incoming, nullptr);
    return nullptr;
}

// A replicated UPDATE is another copy of a message (a winner, a tombstone)
// that the sending region stored over its own. It goes through the same rule
// and checks as an insert; an update that changes nothing here is dropped,
// which also ends its relay around the mesh.
HeapTuple apply_update(const Firing& t) {
    if (t.problem != nullptr)
        quarantine(t, t.data->tg_newtuple, t.problem);
    else
        apply(t, t.data->tg_newtuple, t.data->tg_trigtuple);
    return nullptr;
}

// DELETE is not published (a deletion travels as its tombstone). One that
// arrives anyway, from a publication set up by hand, is not applied: a
// message is never removed by a row event from elsewhere.
HeapTuple apply_delete(const Firing& t) {
    ereport(DEBUG1, (errmsg("pg_causal ignored a replicated DELETE on \"%s\"", RelationGetRelationName(t.rel))));
    return nullptr;
}

}  // namespace causal::pg
