// The local path of a causal message table: writes of an ordinary session.
// Refuses what this region may not take (it is fenced, the client's epoch is
// stale, the message is malformed), observes the deps and stamps hlc, region
// and epoch. A message is append-only; a DELETE turns it into a tombstone.

#include "core/clock.hpp"
#include "table/fenced_deletions.hpp"
#include "table/msg_id.hpp"
#include "hlc/clock.hpp"
#include "hlc/hlc_datum.hpp"
#include "mesh/liveness.hpp"
#include "infra/owner.hpp"
#include "table/paths.hpp"
#include "mesh/regions.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "infra/sqlstates.hpp"
#include "read/stable.hpp"
#include "table/stamps.hpp"
#include "table/store.hpp"

extern "C" {
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/uuid.h"
#include "executor/executor.h"
#include "rewrite/rewriteHandler.h"
}

#include <cstring>

namespace causal::pg {

namespace {

int hint_live_region(const RegionState& state) {
    if (state.live_region != nullptr) return errhint("Write to region \"%s\", which is active.", state.live_region);
    return errhint("No other region is active.");
}

// 5C001 while this region is fenced, by the mesh or by itself.
RegionState require_open_region(const char* region) {
    const RegionState state = own_region_state();
    if (state.fenced)
        ereport(ERROR, (errcode(kRegionFenced), errmsg("region \"%s\" is fenced", region),
                        errdetail("It takes no writes until it rejoins the mesh (epoch %lld).",
                                  static_cast<long long>(state.epoch)),
                        hint_live_region(state)));
    if (SelfFence cut = self_fence(); cut.fenced)
        ereport(ERROR, (errcode(kRegionFenced), errmsg("region \"%s\" has fenced itself", region),
                        errdetail("For %lld ms it has heard from %d of %d regions, itself included: fewer "
                                  "than a majority (causal.self_fence_after is %d ms).",
                                  static_cast<long long>(cut.since_ms), cut.heard + 1, cut.regions,
                                  static_cast<int>(liveness_timing().self_fence_after_ms)),
                        hint_live_region(state)));
    return state;
}

void require_current_epoch(const Firing& t, HeapTuple row, const char* region, const RegionState& state) {
    bool isnull = false;
    const Datum client_epoch = get(t, row, t.columns.epoch, &isnull);
    if (isnull || DatumGetInt64(client_epoch) == state.epoch) return;
    // Older: the region rejoined since the client learned its epoch.
    // Newer: the client saw a fence that has not reached this region.
    const bool newer = DatumGetInt64(client_epoch) > state.epoch;
    ereport(ERROR,
            (errcode(kStaleEpoch),
             errmsg("epoch %lld is %s than region \"%s\"'s epoch %lld",
                    static_cast<long long>(DatumGetInt64(client_epoch)), newer ? "newer" : "older", region,
                    static_cast<long long>(state.epoch)),
             newer ? errdetail("The client has seen a change of the fencing state that this region has not "
                               "received yet: it may be fenced.")
                   : errdetail("The region was fenced and has rejoined since the client learned its epoch."),
             newer ? hint_live_region(state)
             : state.live_region != nullptr
                 ? errhint("Read the current epoch from causal.regions, or write to region \"%s\".",
                           state.live_region)
                 : errhint("Read the current epoch from causal.regions.")));
}

}  // namespace

HeapTuple local_insert(const Firing& t) {
    require_fit(t);
    HeapTuple row = t.data->tg_trigtuple;
    const char* region = require_region();
    const RegionState state = require_open_region(region);
    require_current_epoch(t, row, region, state);
    bool isnull = false;
    (void)get(t, row, t.columns.conversation, &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                        errmsg("a message needs a conversation: column \"%s\" is NULL",
                               NameStr(TupleDescAttr(t.desc, t.columns.conversation - 1)->attname))));

    const Deps deps = read_deps(t, row);
    if (deps.problem != nullptr && deps.count > kMaxDepsAccepted)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("a message may depend on at most %d messages, not %d", kMaxDepsAccepted, deps.count)));
    if (deps.problem_code == ERRCODE_NULL_VALUE_NOT_ALLOWED)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("deps must not contain NULL")));
    if (deps.problem != nullptr) ereport(ERROR, (errcode(deps.problem_code), errmsg("%s", deps.problem)));
    const auto too_far_ahead = [&](const Hlc& dep) {
        const uint64_t now = system_wall_ms();
        const uint64_t dep_ms = dep.physical_ms();
        ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
                        errmsg("dependency %s is %llu ms ahead of this region's clock", hlc_text(dep),
                               static_cast<unsigned long long>(dep_ms > now ? dep_ms - now : 0)),
                        errdetail("causal.max_clock_offset is %d ms: no message this far in the future can have "
                                  "been seen yet.",
                                  max_clock_offset_ms)));
    };
    if (deps.max != nullptr &&
        deps.max->physical_ms() > system_wall_ms() + static_cast<uint64_t>(max_clock_offset_ms))
        too_far_ahead(*deps.max);
    // A receive event for the newest dep makes hlc > every dep, if the clock
    // adopts it: the wall clock may have stepped back since the check above,
    // and stamped below its dep the message would be kept here and
    // quarantined everywhere else. The clock's own answer decides.
    // Until this transaction ends, this region's stable point stays below
    // the stamp (a peer's cursor must not pass a message still to come).
    note_unfinished_stamp();
    Hlc stamped;
    if (deps.max != nullptr) {
        const Observation seen = clock_observe(*deps.max);
        if (!seen.adopted || !(*deps.max < seen.value)) too_far_ahead(*deps.max);
        stamped = seen.value;
    } else {
        stamped = clock_now();
    }

    Datum msg_id = get(t, row, t.columns.msg_id, &isnull);
    if (isnull) msg_id = new_msg_id();
    Datum deps_value = get(t, row, t.columns.deps, &isnull);
    if (isnull) deps_value = PointerGetDatum(construct_empty_array(TupleDescAttr(t.desc, t.columns.hlc - 1)->atttypid));
    // deleted_at and copies too: a message is born alive, and one copy.
    // written_by NULL: the region that wrote it is its crdb_region's, which
    // publishes it (causal_messages).
    int columns[] = {t.columns.msg_id, t.columns.hlc,        t.columns.deps,   t.columns.region,
                     t.columns.epoch,  t.columns.deleted_at, t.columns.copies, t.columns.written_by};
    Datum values[] = {msg_id, hlc_datum(stamped), deps_value, CStringGetTextDatum(region), Int64GetDatum(state.epoch),
                      Datum(0), no_copies(t), Datum(0)};
    bool nulls[] = {false, false, false, false, false, true, false, true};
    return heap_modify_tuple_by_cols(row, t.desc, t.columns.written_by ? 8 : 7, columns, values, nulls);
}

// Messages are append-only: an edit is a new message whose deps name the one
// it edits. Replicating in-place changes would need versions of their own
// (two regions editing one message would flip it back and forth forever),
// so an UPDATE that changes a message is refused. One that changes nothing
// goes through, for `ON CONFLICT (msg_id) DO UPDATE ... RETURNING hlc`, the
// race-free way for a retry to learn its original hlc; the other regions
// drop it on arrival (apply_update).
HeapTuple local_update(const Firing& t) {
    require_fit(t);
    HeapTuple old_row = t.data->tg_trigtuple, new_row = t.data->tg_newtuple;
    for (int i = 0; i < t.desc->natts; ++i) {
        Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        if (attribute->attisdropped) continue;
        bool old_null = false, new_null = false;
        const Datum old_value = get(t, old_row, attribute->attnum, &old_null);
        const Datum new_value = get(t, new_row, attribute->attnum, &new_null);
        if (old_null != new_null ||
            (!old_null && !datum_image_eq(old_value, new_value, attribute->attbyval, attribute->attlen)))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("a causal message cannot be changed once sent"),
                            errdetail("Column \"%s\" of \"%s\" would change.", NameStr(attribute->attname),
                                      RelationGetRelationName(t.rel)),
                            errhint("Send a new message that names this one in its deps, or DELETE it.")));
    }
    return new_row;
}

// A DELETE takes the message's body away in every region; the message
// itself stays, as a tombstone (write_tombstone), so that every hlc naming
// it still resolves and its replies stay deliverable in the same order.
// Deleting a tombstone changes nothing, unless its deletion is a fenced
// region's, which deletes nothing: the message lives on in the regions that
// kept its body, and a deletion here, an active region's, erases it there.
HeapTuple local_delete(const Firing& t) {
    require_fit(t);
    HeapTuple row = t.data->tg_trigtuple;
    const std::optional<Hlc> deleted_at = get_deleted_at(t, row);
    if (deleted_at && !deletion_fenced(t, row, deleted_at)) return nullptr;
    // (Its record in causal.fenced_deletions is settled by the relay: the
    // deleting role need not write there.)
    (void)require_open_region(require_region());
    return row;
}

// Each column but `skip` at its default (NULL without one), evaluated as
// the executor would for an INSERT that leaves it out; identity columns
// draw their next value.
void fill_defaults(const Firing& t, const AttrNumber* skip, int skipped, Datum* values, bool* nulls) {
    EState* estate = CreateExecutorState();
    for (int i = 0; i < t.desc->natts; ++i) {
        const Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        bool named = false;
        for (int k = 0; k < skipped; ++k) named = named || skip[k] == attribute->attnum;
        if (named || attribute->attisdropped || attribute->attgenerated) continue;
        Expr* expression = reinterpret_cast<Expr*>(build_column_default(t.rel, attribute->attnum));
        if (expression == nullptr) continue;
        ExprState* state = ExecPrepareExpr(expression, estate);
        values[i] = ExecEvalExprSwitchContext(state, GetPerTupleExprContext(estate), &nulls[i]);
        if (!nulls[i]) values[i] = datumCopy(values[i], attribute->attbyval, attribute->attlen);
    }
    FreeExecutorState(estate);
}

// After the DELETE, in the same statement: the tombstone, a new row with the
// message's stamp and conversation, deleted_at, and every other column at
// its default. It is what replicates (DELETE is not published), and the
// other regions' apply paths turn their copy into it (src/core/copies.hpp).
// Written as the table's owner, like everything pg_causal writes to it.
void write_tombstone(const Firing& t) {
    HeapTuple row = t.data->tg_trigtuple;
    for (int i = 0; i < t.desc->natts; ++i) {
        const Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        if (attribute->attisdropped || !attribute->attnotnull || attribute->atthasdef || attribute->attidentity ||
            attribute->attgenerated || is_stamp_column(t, attribute->attnum))
            continue;
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                        errmsg("cannot delete a message of \"%s\": column \"%s\" is NOT NULL and has no default",
                               RelationGetRelationName(t.rel), NameStr(attribute->attname)),
                        errdetail("A deleted message leaves a tombstone whose other columns are their defaults."),
                        errhint("Give the column a default (ALTER TABLE ... ALTER COLUMN %s SET DEFAULT ...), or "
                                "let it be NULL.",
                                quote_identifier(NameStr(attribute->attname)))));
    }
    // The stamp it keeps (crdb_region is the message's region), then when it
    // was deleted and by which region: the one that publishes it.
    const AttrNumber columns[] = {t.columns.conversation, t.columns.msg_id, t.columns.hlc,
                                  t.columns.deps,         t.columns.region, t.columns.epoch,
                                  t.columns.copies,       t.columns.deleted_at, t.columns.written_by};
    constexpr int most = sizeof columns / sizeof columns[0];
    constexpr int kept = most - 2;
    const int n = t.columns.written_by ? most : most - 1;  // a table not updated from 0.2.0 yet has none
    Datum values[most];
    bool nulls[most];
    for (int i = 0; i < n; ++i) {
        values[i] = i < kept ? get(t, row, columns[i], &nulls[i]) : Datum(0);
        if (i >= kept) nulls[i] = false;
    }
    // Like an INSERT's stamp: a cursor taken before this commits must not
    // pass the deletion.
    note_unfinished_stamp();
    values[kept] = hlc_datum(clock_now());
    if (n > kept + 1) values[kept + 1] = CStringGetTextDatum(require_region());
    // Every other column at its default, as an INSERT naming these would
    // leave it: the defaults are the table's (table_shape.hpp allows them).
    auto* tombstone_values = static_cast<Datum*>(palloc0(sizeof(Datum) * t.desc->natts));
    auto* tombstone_nulls = static_cast<bool*>(palloc(sizeof(bool) * t.desc->natts));
    for (int i = 0; i < t.desc->natts; ++i) tombstone_nulls[i] = true;
    for (int i = 0; i < n; ++i) {
        tombstone_values[columns[i] - 1] = values[i];
        tombstone_nulls[columns[i] - 1] = nulls[i];
    }
    const Oid relid = RelationGetRelid(t.rel);
    const OwnerScope scope = enter_owner_scope(relid);
    fill_defaults(t, columns, n, tombstone_values, tombstone_nulls);
    HeapTuple tombstone = heap_form_tuple(t.desc, tombstone_values, tombstone_nulls);
    bool isnull = false;
    expect_own_write(relid, get(t, row, t.columns.msg_id, &isnull), tombstone);
    store_insert(t.rel, tombstone);
    // A trigger of the owner's that skipped it would delete the message
    // here alone.
    if (!end_own_write().stored)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("a trigger kept pg_causal from storing the tombstone of a message of \"%s\"",
                               RelationGetRelationName(t.rel)),
                        errdetail("Without it the message would be deleted in this region only.")));
    leave_owner_scope(scope);
}

}  // namespace causal::pg
