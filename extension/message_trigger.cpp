// causal.message_trigger(): the BEFORE INSERT OR UPDATE trigger of causal
// message tables, ENABLE ALWAYS so that both write paths run it.
//
// Local path (an ordinary session): refuse writes while this region is fenced
// or from a stale epoch, observe the deps, stamp hlc, region and epoch.
// Apply path (the logical replication apply worker, session_replication_role
// = replica): deduplicate, converge on one winner per msg_id, observe the
// remote hlc, count orphans. No row can stop replication there: whatever is
// wrong with a row sends it to causal.quarantine; only what a retry of the
// whole transaction can fix is raised (see apply_insert()).
//
// Everything here runs in frames that hold only trivially destructible
// objects, so ereport may longjmp through them.
#include "../src/core/clock.hpp"
#include "../src/core/msg_id.hpp"
#include "clock.hpp"
#include "hlc_datum.hpp"
#include "liveness.hpp"
#include "regions.hpp"
#include "settings.hpp"
#include "sqlstates.hpp"
#include "table_stats.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "common/pg_prng.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "mb/pg_wchar.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/uuid.h"
}

#include <cstring>

namespace causal::pg {

namespace {

// More dependencies than any chat client sends: a context is the latest
// message of each thread of a conversation the client has seen.
constexpr int kMaxDeps = 128;

// Where pg_causal's columns are in this table's rows.
struct Columns {
    AttrNumber conversation, msg_id, hlc, deps, region, epoch;
};

struct Firing {
    TriggerData* data;
    Relation rel;
    TupleDesc desc;
    Columns columns;
    const char* missing_column;  // a column of pg_causal's the table lacks
    bool notify;
};

// Finds pg_causal's columns in t.rel; the name of the first one missing, or
// nullptr when all are there.
const char* find_columns(Firing& t, const char* conversation) {
    struct {
        AttrNumber* attnum;
        const char* name;
    } wanted[] = {{&t.columns.conversation, conversation}, {&t.columns.msg_id, "msg_id"},
                  {&t.columns.hlc, "hlc"},                 {&t.columns.deps, "deps"},
                  {&t.columns.region, "crdb_region"},      {&t.columns.epoch, "epoch"}};
    for (auto& column : wanted) {
        int attnum = SPI_fnumber(t.desc, column.name);
        if (attnum <= 0) return column.name;
        *column.attnum = static_cast<AttrNumber>(attnum);
    }
    return nullptr;
}

// The columns of the table written last, kept until the table changes: the
// insert path would otherwise look six names up per row.
struct ColumnCache {
    bool valid = false;
    Oid relid = InvalidOid;
    char conversation[NAMEDATALEN] = "";
    Columns columns = {};
    char missing[NAMEDATALEN] = "";
};
ColumnCache column_cache;

void forget_columns(Datum, Oid relid) {
    if (relid == InvalidOid || relid == column_cache.relid) column_cache.valid = false;
}

void read_columns(Firing& t, const char* conversation) {
    static bool registered = false;
    if (!registered) {
        CacheRegisterRelcacheCallback(forget_columns, 0);
        registered = true;
    }
    Oid relid = RelationGetRelid(t.rel);
    if (!column_cache.valid || column_cache.relid != relid ||
        std::strncmp(column_cache.conversation, conversation, NAMEDATALEN) != 0) {
        const char* missing = find_columns(t, conversation);
        column_cache.relid = relid;
        strlcpy(column_cache.conversation, conversation, NAMEDATALEN);
        column_cache.columns = t.columns;
        strlcpy(column_cache.missing, missing ? missing : "", NAMEDATALEN);
        column_cache.valid = true;
    }
    t.columns = column_cache.columns;
    t.missing_column = column_cache.missing[0] ? column_cache.missing : nullptr;
}

// The two trigger functions, as causal.enable() creates them: BEFORE INSERT
// OR UPDATE, and AFTER INSERT, row triggers with two arguments.
Firing read_trigger(FunctionCallInfo fcinfo, bool before) {
    const char* function = before ? "causal.message_trigger()" : "causal.message_stored()";
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s must be called as a trigger", function)));
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (TRIGGER_FIRED_BEFORE(data->tg_event) != before || !TRIGGER_FIRED_FOR_ROW(data->tg_event) ||
        TRIGGER_FIRED_BY_DELETE(data->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(data->tg_event) ||
        (!before && !TRIGGER_FIRED_BY_INSERT(data->tg_event)) || data->tg_trigger->tgnargs != 2)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s is not a trigger as causal.enable() creates it", function),
                        errhint("Run causal.enable() on the table again.")));
    Firing t = {};
    t.data = data;
    t.rel = data->tg_relation;
    t.desc = RelationGetDescr(t.rel);
    read_columns(t, data->tg_trigger->tgargs[0]);
    t.notify = std::strcmp(data->tg_trigger->tgargs[1], "notify") == 0;
    return t;
}

Datum get(const Firing& t, HeapTuple row, AttrNumber attnum, bool* isnull) {
    return heap_getattr(row, attnum, t.desc, isnull);
}

const Hlc* get_hlc(const Firing& t, HeapTuple row) {
    bool isnull = false;
    Datum value = get(t, row, t.columns.hlc, &isnull);
    return isnull ? nullptr : reinterpret_cast<const Hlc*>(DatumGetPointer(value));
}

// The deps of a row, unpacked. `problem` names what is wrong with them.
struct Deps {
    Datum* elements = nullptr;
    bool* nulls = nullptr;
    int count = 0;
    const Hlc* max = nullptr;
    const char* problem = nullptr;
};

Deps read_deps(const Firing& t, HeapTuple row) {
    Deps deps;
    bool isnull = false;
    Datum value = get(t, row, t.columns.deps, &isnull);
    if (isnull) return deps;
    ArrayType* array = DatumGetArrayTypeP(value);
    if (ARR_NDIM(array) == 0) return deps;  // '{}', most messages
    deconstruct_array(array, ARR_ELEMTYPE(array), sizeof(Hlc), false, TYPALIGN_DOUBLE,
                      &deps.elements, &deps.nulls, &deps.count);
    if (deps.count > kMaxDeps) {
        deps.problem = "too many deps";
        return deps;
    }
    for (int i = 0; i < deps.count; ++i) {
        if (deps.nulls[i]) {
            deps.problem = "a dep is NULL";
            return deps;
        }
        const Hlc* dep = reinterpret_cast<const Hlc*>(DatumGetPointer(deps.elements[i]));
        if (deps.max == nullptr || compare(*dep, *deps.max) > 0) deps.max = dep;
    }
    return deps;
}

char* hlc_text(const Hlc& value) {
    char* text = static_cast<char*>(palloc(kHlcTextMax));
    format(value, *reinterpret_cast<char(*)[kHlcTextMax]>(text));
    return text;
}

// NOTIFY "<schema>.<table>", '<conversation> <hlc>[ orphan]', sent at commit.
// A channel name is at most NAMEDATALEN - 1 bytes: longer ones are cut there
// (at a character boundary) rather than failing the insert.
void notify_row(const Firing& t, HeapTuple row, const Hlc& hlc, bool orphan) {
    bool isnull = false;
    Datum conversation = get(t, row, t.columns.conversation, &isnull);
    Oid output = InvalidOid;
    bool varlena = false;
    getTypeOutputInfo(TupleDescAttr(t.desc, t.columns.conversation - 1)->atttypid, &output, &varlena);
    StringInfoData channel, payload;
    initStringInfo(&channel);
    appendStringInfo(&channel, "%s.%s", get_namespace_name(RelationGetNamespace(t.rel)),
                     RelationGetRelationName(t.rel));
    if (channel.len >= NAMEDATALEN)
        channel.data[pg_mbcliplen(channel.data, channel.len, NAMEDATALEN - 1)] = '\0';
    initStringInfo(&payload);
    appendStringInfo(&payload, "%s %s%s", isnull ? "" : OidOutputFunctionCall(output, conversation),
                     hlc_text(hlc), orphan ? " orphan" : "");
    Async_Notify(channel.data, payload.data);
}

// The random bits come from the backend's PRNG, seeded from the kernel's
// strong randomness at backend start: a msg_id must be unique, not secret,
// and the strong source cost 3.5 % of an insert's CPU time.
Datum new_msg_id() {
    uint8_t random[10];
    uint64 high = pg_prng_uint64(&pg_global_prng_state);
    uint16 low = static_cast<uint16>(pg_prng_uint32(&pg_global_prng_state));
    std::memcpy(random, &high, sizeof high);
    std::memcpy(random + sizeof high, &low, sizeof low);
    auto* id = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
    uuid_v7(system_wall_ms(), random, *reinterpret_cast<uint8_t(*)[16]>(id->data));
    return UUIDPGetDatum(id);
}

// Two apply workers delivering one msg_id at once (it arrives by every path
// of the mesh) take turns: the second finds the first's row and drops its
// copy, instead of failing on the unique index, which would stop its
// subscription. The lock lasts until commit, so a transaction takes at most
// kMaxMsgIdLocks of them and relies on find_existing()'s wait alone beyond
// that: a bulk transaction must not exhaust the lock table.
constexpr int kMaxMsgIdLocks = 64;

void lock_msg_id(Datum msg_id) {
    static LocalTransactionId transaction = InvalidLocalTransactionId;
    static int taken = 0;
    if (MyProc->lxid != transaction) {
        transaction = MyProc->lxid;
        taken = 0;
    }
    if (taken >= kMaxMsgIdLocks) return;
    ++taken;
    // An advisory lock tag of pg_causal's own (the built-in functions use
    // 1 and 2 in its last field), so that no application lock collides.
    constexpr uint16 kMsgIdLockSpace = 0x4343;
    uint32 key[2];
    std::memcpy(key, DatumGetUUIDP(msg_id)->data + 8, sizeof key);  // the random half
    LOCKTAG tag;
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, key[0], key[1], kMsgIdLockSpace);
    (void)LockAcquire(&tag, ExclusiveLock, false, false);
}

// ---- local path ----------------------------------------------------------

int hint_live_region(const RegionState& state) {
    if (state.live_region != nullptr)
        return errhint("Write to region \"%s\", which is active.", state.live_region);
    return errhint("No other region is active.");
}

void require_columns(const Firing& t) {
    if (t.missing_column != nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("causal message table \"%s\" has no column \"%s\"",
                               RelationGetRelationName(t.rel), t.missing_column),
                        errhint("Run causal.enable() on the table again.")));
}

HeapTuple local_insert(const Firing& t) {
    require_columns(t);
    HeapTuple row = t.data->tg_trigtuple;
    const char* region = require_region();
    RegionState state = own_region_state();
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
                                  self_fence_after_ms),
                        hint_live_region(state)));
    bool isnull = false;
    Datum client_epoch = get(t, row, t.columns.epoch, &isnull);
    if (!isnull && DatumGetInt64(client_epoch) != state.epoch) {
        // Older: the region rejoined since the client learned its epoch.
        // Newer: the client saw a fence that has not reached this region.
        bool newer = DatumGetInt64(client_epoch) > state.epoch;
        ereport(ERROR,
                (errcode(kStaleEpoch),
                 errmsg("epoch %lld is %s than region \"%s\"'s epoch %lld",
                        static_cast<long long>(DatumGetInt64(client_epoch)),
                        newer ? "newer" : "older", region, static_cast<long long>(state.epoch)),
                 newer ? errdetail("The client has seen a change of the fencing state that this "
                                   "region has not received yet: it may be fenced.")
                       : errdetail("The region was fenced and has rejoined since the client "
                                   "learned its epoch."),
                 newer ? hint_live_region(state)
                 : state.live_region != nullptr
                     ? errhint("Read the current epoch from causal.regions, or write to region "
                               "\"%s\".",
                               state.live_region)
                     : errhint("Read the current epoch from causal.regions.")));
    }
    (void)get(t, row, t.columns.conversation, &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                        errmsg("a message needs a conversation: column \"%s\" is NULL",
                               NameStr(TupleDescAttr(t.desc, t.columns.conversation - 1)->attname))));

    Deps deps = read_deps(t, row);
    if (deps.problem != nullptr && deps.count > kMaxDeps)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("a message may depend on at most %d messages, not %d", kMaxDeps,
                               deps.count)));
    if (deps.problem != nullptr)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("deps must not contain NULL")));
    if (deps.max != nullptr) {
        uint64_t now = system_wall_ms();
        uint64_t limit = now + static_cast<uint64_t>(max_clock_offset_ms);
        if (deps.max->physical_ms() > limit)
            ereport(ERROR,
                    (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
                     errmsg("dependency %s is %llu ms ahead of this region's clock",
                            hlc_text(*deps.max),
                            static_cast<unsigned long long>(deps.max->physical_ms() - now)),
                     errdetail("causal.max_clock_offset is %d ms: no message this far in the "
                               "future can have been seen yet.",
                               max_clock_offset_ms)));
    }
    // A receive event for the newest dep makes hlc > every dep.
    Hlc stamped = deps.max != nullptr ? clock_observe(*deps.max).value : clock_now();

    Datum msg_id = get(t, row, t.columns.msg_id, &isnull);
    if (isnull) msg_id = new_msg_id();

    Datum deps_value = get(t, row, t.columns.deps, &isnull);
    if (isnull)
        deps_value = PointerGetDatum(
            construct_empty_array(TupleDescAttr(t.desc, t.columns.hlc - 1)->atttypid));
    int columns[] = {t.columns.msg_id, t.columns.hlc, t.columns.deps, t.columns.region,
                     t.columns.epoch};
    Datum values[] = {msg_id, hlc_datum(stamped), deps_value, CStringGetTextDatum(region),
                      Int64GetDatum(state.epoch)};
    bool nulls[] = {false, false, false, false, false};
    HeapTuple stamped_row = heap_modify_tuple_by_cols(row, t.desc, 5, columns, values, nulls);

    return stamped_row;
}

// Messages are append-only: an edit is a new message whose deps name the one
// it edits. Replicating in-place changes would need versions of their own
// (two regions editing one message would flip it back and forth forever),
// so an UPDATE that changes a message is refused. One that changes nothing
// goes through, for `ON CONFLICT (msg_id) DO UPDATE ... RETURNING hlc`, the
// race-free way for a retry to learn its original hlc; the other regions
// drop it on arrival (apply_update).
HeapTuple local_update(const Firing& t) {
    require_columns(t);
    HeapTuple old_row = t.data->tg_trigtuple, new_row = t.data->tg_newtuple;
    for (int i = 0; i < t.desc->natts; ++i) {
        Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        if (attribute->attisdropped) continue;
        bool old_null = false, new_null = false;
        Datum old_value = get(t, old_row, attribute->attnum, &old_null);
        Datum new_value = get(t, new_row, attribute->attnum, &new_null);
        if (old_null != new_null ||
            (!old_null && !datum_image_eq(old_value, new_value, attribute->attbyval, attribute->attlen)))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("a causal message cannot be changed once sent"),
                            errdetail("Column \"%s\" of \"%s\" would change.",
                                      NameStr(attribute->attname), RelationGetRelationName(t.rel)),
                            errhint("Send a new message that names this one in its deps.")));
    }
    return new_row;
}

// ---- apply path ----------------------------------------------------------

// Per table, the statements that store a replicated row and replace a loser
// with the winner, planned once per backend and again after the table
// changes. Both carry every column but generated ones.
struct Statements {
    Oid relid;  // hash key
    bool stale;
    SPIPlanPtr insert;   // store a replicated row, every column as it came
    SPIPlanPtr replace;
    int ncolumns;
    int* attnums;  // the parameters of both, in order
};

HTAB* statements = nullptr;

void on_relcache_invalidation(Datum, Oid relid) {
    if (statements == nullptr) return;
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, statements);
    while (auto* entry = static_cast<Statements*>(hash_seq_search(&scan)))
        if (relid == InvalidOid || entry->relid == relid) entry->stale = true;
}

SPIPlanPtr keep(SPIPlanPtr plan, const char* query) {
    if (plan == nullptr) elog(ERROR, "pg_causal could not plan \"%s\": %s", query, SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    return plan;
}

// Call with SPI connected.
Statements* statements_for(const Firing& t) {
    if (statements == nullptr) {
        HASHCTL info = {};
        info.keysize = sizeof(Oid);
        info.entrysize = sizeof(Statements);
        info.hcxt = TopMemoryContext;
        statements = hash_create("pg_causal message statements", 16, &info,
                                 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
        CacheRegisterRelcacheCallback(on_relcache_invalidation, 0);
    }
    Oid relid = RelationGetRelid(t.rel);
    bool found = false;
    auto* entry = static_cast<Statements*>(hash_search(statements, &relid, HASH_ENTER, &found));
    if (found && !entry->stale) return entry;
    if (found) {
        if (entry->insert) SPI_freeplan(entry->insert);
        if (entry->replace) SPI_freeplan(entry->replace);
        if (entry->attnums) pfree(entry->attnums);
    }
    entry->insert = entry->replace = nullptr;
    entry->attnums = nullptr;
    entry->stale = true;  // until planned

    const char* table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(t.rel)),
                                                   RelationGetRelationName(t.rel));
    // Every stored column; an UPDATE may not set an identity column that is
    // GENERATED ALWAYS, an INSERT may, with OVERRIDING SYSTEM VALUE.
    Oid* types = static_cast<Oid*>(palloc(sizeof(Oid) * (t.desc->natts + 1)));
    int* attnums =
        static_cast<int*>(MemoryContextAlloc(TopMemoryContext, sizeof(int) * (t.desc->natts + 1)));
    StringInfoData insert, update;
    initStringInfo(&insert);
    initStringInfo(&update);
    int ncolumns = 0, nupdated = 0;
    for (int i = 0; i < t.desc->natts; ++i) {
        Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        if (attribute->attisdropped || attribute->attgenerated) continue;
        const char* name = quote_identifier(NameStr(attribute->attname));
        appendStringInfo(&insert, "%s%s", ncolumns ? ", " : "", name);
        types[ncolumns] = attribute->atttypid;
        attnums[ncolumns++] = attribute->attnum;
        if (attribute->attidentity != ATTRIBUTE_IDENTITY_ALWAYS)
            appendStringInfo(&update, "%s%s = $%d", nupdated++ ? ", " : "", name, ncolumns);
    }
    StringInfoData query;
    initStringInfo(&query);
    appendStringInfo(&query, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (", table, insert.data);
    for (int i = 1; i <= ncolumns; ++i) appendStringInfo(&query, "%s$%d", i > 1 ? ", " : "", i);
    appendStringInfoChar(&query, ')');
    entry->insert = keep(SPI_prepare(query.data, ncolumns, types), query.data);

    types[ncolumns] = UUIDOID;
    resetStringInfo(&query);
    appendStringInfo(&query, "UPDATE %s SET %s WHERE msg_id = $%d", table, update.data, ncolumns + 1);
    entry->replace = keep(SPI_prepare(query.data, ncolumns + 1, types), query.data);
    entry->ncolumns = ncolumns;
    entry->attnums = attnums;
    entry->stale = false;
    return entry;
}

struct Existing {
    bool found;
    Hlc hlc;
};

// The row with this msg_id, through the msg_id index (the replica identity)
// with a dirty snapshot: a row another transaction is inserting or replacing
// right now is waited for, as the unique index itself would, so that this
// insert never runs into it.
Existing find_existing(const Firing& t, Datum msg_id) {
    Oid index_oid = RelationGetReplicaIndex(t.rel);
    if (!OidIsValid(index_oid))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the replica identity of \"%s\" is not its msg_id index",
                               RelationGetRelationName(t.rel)),
                        errhint("Run causal.enable() on the table again.")));
    Relation index = index_open(index_oid, AccessShareLock);
    TupleTableSlot* slot = table_slot_create(t.rel, nullptr);
    Existing existing = {false, {}};
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
                bool isnull = false;
                Datum value = slot_getattr(slot, t.columns.hlc, &isnull);
                existing.found = true;
                if (!isnull) existing.hlc = *reinterpret_cast<const Hlc*>(DatumGetPointer(value));
            }
        }
        index_endscan(scan);
        if (!TransactionIdIsValid(in_progress)) break;
        XactLockTableWait(in_progress, t.rel, &tid, XLTW_InsertIndexUnique);
    }
    ExecDropSingleTupleTableSlot(slot);
    index_close(index, AccessShareLock);
    return existing;
}

// The row's stored columns as parameters of s's statements, with `extra`
// appended when given.
void row_parameters(const Firing& t, Statements* s, HeapTuple row, const Datum* extra,
                    Datum** values_out, char** nulls_out) {
    Datum* values = static_cast<Datum*>(palloc(sizeof(Datum) * (s->ncolumns + 1)));
    char* nulls = static_cast<char*>(palloc(s->ncolumns + 2));
    for (int i = 0; i < s->ncolumns; ++i) {
        bool isnull = false;
        values[i] = get(t, row, static_cast<AttrNumber>(s->attnums[i]), &isnull);
        nulls[i] = isnull ? 'n' : ' ';
    }
    int n = s->ncolumns;
    if (extra != nullptr) {
        values[n] = *extra;
        nulls[n++] = ' ';
    }
    nulls[n] = '\0';
    *values_out = values;
    *nulls_out = nulls;
}

// Set while the apply path stores a row itself, so that the trigger, fired
// again by that INSERT, lets it through.
bool storing_row = false;

void insert_row(const Firing& t, Statements* s, HeapTuple row) {
    Datum* values;
    char* nulls;
    row_parameters(t, s, row, nullptr, &values, &nulls);
    storing_row = true;
    int result = SPI_execute_plan(s->insert, values, nulls, false, 0);
    storing_row = false;  // an error resets it in apply_insert()
    if (result != SPI_OK_INSERT) elog(ERROR, "pg_causal could not store a replicated message");
}

void replace_with(const Firing& t, Statements* s, HeapTuple winner, Datum msg_id) {
    Datum* values;
    char* nulls;
    row_parameters(t, s, winner, &msg_id, &values, &nulls);
    if (SPI_execute_plan(s->replace, values, nulls, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "pg_causal could not replace a message with the winner");
}

// What makes a replicated row impossible to take as a message, or nullptr.
const char* malformed(const Firing& t, HeapTuple row, const Deps& deps) {
    bool isnull = false;
    if ((get(t, row, t.columns.msg_id, &isnull), isnull)) return "msg_id is NULL";
    if ((get(t, row, t.columns.conversation, &isnull), isnull)) return "the conversation is NULL";
    if ((get(t, row, t.columns.region, &isnull), isnull)) return "crdb_region is NULL";
    if ((get(t, row, t.columns.epoch, &isnull), isnull)) return "epoch is NULL";
    const Hlc* hlc = get_hlc(t, row);
    if (hlc == nullptr) return "hlc is NULL";
    if (deps.problem != nullptr) return deps.problem;
    if (deps.max != nullptr && compare(*deps.max, *hlc) >= 0)
        return "a dep is not older than the message itself";
    return nullptr;
}

void quarantine(const Firing& t, HeapTuple row, const char* reason);

// The apply path proper. It stores the row itself, inside apply_insert()'s
// subtransaction, so that a constraint the row breaks (a CHECK, another
// unique index) is caught there too; the apply worker's own insert is then
// skipped. May raise; apply_insert() catches.
HeapTuple try_apply_insert(const Firing& t) {
    HeapTuple row = t.data->tg_trigtuple;
    Oid relid = RelationGetRelid(t.rel);
    if (t.missing_column != nullptr) {
        quarantine(t, row, psprintf("the table has no column \"%s\"", t.missing_column));
        return nullptr;
    }
    Deps deps = read_deps(t, row);
    if (const char* problem = malformed(t, row, deps)) {
        quarantine(t, row, problem);
        return nullptr;
    }
    const Hlc hlc = *get_hlc(t, row);
    // The receive event, for every well-formed row: even a duplicate proves
    // that its sender's clock got this far.
    if (!clock_observe(hlc).adopted) count(relid, Counter::OffsetRejections);

    bool isnull = false;
    Datum msg_id = get(t, row, t.columns.msg_id, &isnull);
    lock_msg_id(msg_id);
    Existing existing = find_existing(t, msg_id);
    SPI_connect();
    if (existing.found) {
        // One msg_id, one message: the smallest hlc wins, in every region.
        if (compare(hlc, existing.hlc) < 0) {
            replace_with(t, statements_for(t), row, msg_id);
            count(relid, Counter::WinnersReplaced);
        } else {
            count(relid, Counter::Duplicates);
        }
    } else {
        insert_row(t, statements_for(t), row);
    }
    SPI_finish();
    return nullptr;
}

// Runs `attempt` in a subtransaction. Returns false, with the error in
// *error, when it raised; the error is then handled and nothing `attempt`
// did remains.
template <typename Attempt>
bool in_subtransaction(Attempt attempt, ErrorData** error_out) {
    MemoryContext caller_context = CurrentMemoryContext;
    ResourceOwner caller_owner = CurrentResourceOwner;
    volatile bool succeeded = true;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(caller_context);
    PG_TRY();
    {
        attempt();
        ReleaseCurrentSubTransaction();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        ErrorData* error = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        *error_out = error;
        succeeded = false;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller_context);
    CurrentResourceOwner = caller_owner;
    return succeeded;
}

void quarantine(const Firing& t, HeapTuple row, const char* reason) {
    count(RelationGetRelid(t.rel), Counter::Quarantined);
    ErrorData* failure = nullptr;
    bool stored = in_subtransaction(
        [&] {
            SPI_connect();
            Oid types[] = {TEXTOID, TEXTOID, t.rel->rd_rel->reltype};
            Datum values[] = {
                CStringGetTextDatum(quote_qualified_identifier(
                    get_namespace_name(RelationGetNamespace(t.rel)), RelationGetRelationName(t.rel))),
                CStringGetTextDatum(reason), heap_copy_tuple_as_datum(row, t.desc)};
            if (SPI_execute_with_args("INSERT INTO causal.quarantine (table_name, reason, row_data) "
                                      "VALUES ($1, $2, pg_catalog.to_jsonb($3))",
                                      3, types, values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "could not insert into causal.quarantine");
            SPI_finish();
        },
        &failure);
    if (stored) {
        ereport(LOG, (errmsg("pg_causal quarantined a row replicated into \"%s\": %s",
                             RelationGetRelationName(t.rel), reason),
                      errdetail("It is in causal.quarantine.")));
        return;
    }
    // Last resort: the row's text in the server log. Formatting it can fail
    // too, and nothing here may raise.
    char* text = nullptr;
    ErrorData* unformattable = nullptr;
    in_subtransaction(
        [&] { text = OidOutputFunctionCall(F_RECORD_OUT, heap_copy_tuple_as_datum(row, t.desc)); },
        &unformattable);
    ereport(WARNING, (errmsg("pg_causal could not quarantine a row replicated into \"%s\": %s",
                             RelationGetRelationName(t.rel), reason),
                      errdetail("Storing it failed: %s. The row: %s", failure->message,
                                text ? text : "(could not be formatted)")));
}

// A problem of the row itself, which no retry can fix: bad data, a broken
// constraint. Anything else (the clock unavailable, a deadlock, a cancel,
// out of memory) is raised again, so that the worker retries the transaction
// later instead of dropping the row.
bool row_problem(const ErrorData* error) {
    int category = ERRCODE_TO_CATEGORY(error->sqlerrcode);
    return category == ERRCODE_DATA_EXCEPTION || category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

// A copy of this msg_id that another worker stored between find_existing()
// and our insert (past the first kMaxMsgIdLocks rows of a transaction): not
// a broken row, just a duplicate.
bool lost_race_to_duplicate(const Firing& t, const ErrorData* error) {
    if (error->sqlerrcode != ERRCODE_UNIQUE_VIOLATION || error->constraint_name == nullptr)
        return false;
    const char* msg_id_index = get_rel_name(RelationGetReplicaIndex(t.rel));
    return msg_id_index != nullptr && std::strcmp(error->constraint_name, msg_id_index) == 0;
}

HeapTuple apply_insert(const Firing& t) {
    if (storing_row) return t.data->tg_trigtuple;  // our own insert_row()
    ErrorData* error = nullptr;
    if (!in_subtransaction([&] { try_apply_insert(t); }, &error)) {
        storing_row = false;
        if (!row_problem(error)) ReThrowError(error);
        if (lost_race_to_duplicate(t, error))
            count(RelationGetRelid(t.rel), Counter::Duplicates);
        else
            quarantine(t, t.data->tg_trigtuple, error->message);
    }
    return nullptr;
}

// A replicated UPDATE is always a winner replacing a loser (messages are
// append-only), and it applies only where it is one: where the row holds a
// smaller hlc already, or the same, it changes nothing. Applying an update
// that changes nothing would publish it again, around the mesh forever.
HeapTuple apply_update(const Firing& t) {
    if (t.missing_column != nullptr) return nullptr;
    const Hlc* old_hlc = get_hlc(t, t.data->tg_trigtuple);
    const Hlc* new_hlc = get_hlc(t, t.data->tg_newtuple);
    if (new_hlc == nullptr || old_hlc == nullptr || compare(*new_hlc, *old_hlc) >= 0) return nullptr;
    return t.data->tg_newtuple;
}

// After the row is stored: count it, and tell listeners. On the apply path
// nothing here may raise either; the row is stored whatever happens.
void row_stored(const Firing& t) {
    HeapTuple row = t.data->tg_trigtuple;
    Oid relid = RelationGetRelid(t.rel);
    if (SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA) {
        count(relid, Counter::LocalInserts);
        if (t.notify && t.missing_column == nullptr) notify_row(t, row, *get_hlc(t, row), false);
        return;
    }
    count(relid, Counter::Applied);
    ErrorData* failure = nullptr;
    bool done = in_subtransaction(
        [&] {
            if (t.missing_column != nullptr) return;
            bool isnull = false;
            const Hlc hlc = *get_hlc(t, row);
            Datum region = get(t, row, t.columns.region, &isnull);
            Datum epoch = get(t, row, t.columns.epoch, &isnull);
            bool orphan = fenced_write(TextDatumGetCString(region), DatumGetInt64(epoch), hlc);
            if (orphan) count(relid, Counter::Orphans);
            if (t.notify) notify_row(t, row, hlc, orphan);
        },
        &failure);
    if (!done)
        ereport(WARNING, (errmsg("pg_causal could not flag or notify a row applied to \"%s\": %s",
                                 RelationGetRelationName(t.rel), failure->message),
                          errdetail("The row is stored.")));
}

}  // namespace
}  // namespace causal::pg

CAUSAL_FUNCTION(message_stored) {
    using namespace causal::pg;
    row_stored(read_trigger(fcinfo, false));
    return PointerGetDatum(nullptr);
}

CAUSAL_FUNCTION(new_msg_id) { return causal::pg::new_msg_id(); }

CAUSAL_FUNCTION(message_trigger) {
    using namespace causal::pg;
    Firing t = read_trigger(fcinfo, true);
    bool inserting = TRIGGER_FIRED_BY_INSERT(t.data->tg_event);
    HeapTuple result;
    if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
        result = inserting ? apply_insert(t) : apply_update(t);
    else
        result = inserting ? local_insert(t) : local_update(t);
    return PointerGetDatum(result);
}
