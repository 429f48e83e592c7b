#include "mesh/regions.hpp"

#include <cstring>
#include <string_view>
#include <new>
#include <type_traits>

#include "hlc/hlc_datum.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "mesh/relay.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace causal::pg {

namespace {

// Everything read lives in `context`, which is reset on every reload.
struct Cache {
    MemoryContext context = nullptr;
    bool valid = false;
    uint64 read_after = 0;  // the invalidation count it was read after
    const char* region = nullptr;  // the causal.region the state was read for
    RegionState own = {0, false, nullptr};
    const merge::Fence* fences = nullptr;  // regions point into `context`
    uint64 fence_count = 0;
};

Cache cache;
uint64 invalidations = 0;
Oid regions_relid = InvalidOid;
Oid fences_relid = InvalidOid;
Oid removed_relid = InvalidOid;

void on_relcache_invalidation(Datum, Oid relid) {
    if (relid == InvalidOid || relid == regions_relid || relid == fences_relid || relid == removed_relid)
        ++invalidations;
}

const char* current_region() { return region_setting ? region_setting : ""; }

// Inside an SPI connection. read_only: with the active snapshot; otherwise
// with a new one (in READ COMMITTED).
FenceList read_fences(MemoryContext context, bool read_only) {
    // Never a parallel plan: this runs inside other queries, parallel ones too.
    SPIPlanPtr plan = kept_plan("SELECT region, epoch, fenced_at, lifted_at FROM causal.fences", 0, nullptr, 0);
    spi_run_plan(plan, SPI_OK_SELECT, nullptr, nullptr, read_only, "reading causal.fences");
    static_assert(std::is_trivially_destructible_v<merge::Fence>, "it lives in a context");
    auto* fences = static_cast<merge::Fence*>(
        MemoryContextAllocZero(context, sizeof(merge::Fence) * (SPI_processed + 1)));
    bool isnull = false;
    for (uint64 i = 0; i < SPI_processed; ++i) {
        HeapTuple row = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        merge::Fence& fence = *new (&fences[i]) merge::Fence();
        fence.region = MemoryContextStrdup(context, SPI_getvalue(row, desc, 1));
        fence.epoch = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
        fence.fenced_at = *reinterpret_cast<const Hlc*>(DatumGetPointer(SPI_getbinval(row, desc, 3, &isnull)));
        Datum lifted_at = SPI_getbinval(row, desc, 4, &isnull);
        if (!isnull) fence.lifted_at = *reinterpret_cast<const Hlc*>(DatumGetPointer(lifted_at));
    }
    return {fences, SPI_processed};
}

// Where the clients of a fenced `region` go: the first active region other
// than it, by name in byte order, so every region that sees the same states
// names the same one. The one rule for the 5C001 HINT and for causalctl
// failover's advice (causal.region_for_clients()). In SPI; nullptr if none.
char* region_for_clients(const char* region, MemoryContext context) {
    const Oid type = TEXTOID;
    const Datum arg = CStringGetTextDatum(region);
    spi_run("SELECT r.region FROM causal.regions r WHERE r.state OPERATOR(pg_catalog.=) 'active'"
            " AND r.region OPERATOR(pg_catalog.<>) $1 ORDER BY r.region COLLATE \"C\" LIMIT 1",
            SPI_OK_SELECT, {1, &type, &arg}, true);
    if (SPI_processed == 0) return nullptr;
    return MemoryContextStrdup(context, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

void load() {
    static bool registered = false;
    if (!registered) {
        CacheRegisterRelcacheCallback(on_relcache_invalidation, 0);
        registered = true;
    }
    Oid schema = get_namespace_oid("causal", false);
    regions_relid = get_relname_relid("regions", schema);
    fences_relid = get_relname_relid("fences", schema);
    removed_relid = get_relname_relid("removed_regions", schema);
    if (cache.context == nullptr)
        cache.context =
            AllocSetContextCreate(TopMemoryContext, "pg_causal regions", ALLOCSET_SMALL_SIZES);
    cache.valid = false;
    MemoryContextReset(cache.context);
    // An invalidation that arrives while we read (opening the tables accepts
    // them) leaves the cache invalid, to be read again next time.
    const uint64 seen = invalidations;
    const char* region = current_region();
    bool isnull = false;

    SPI_connect();
    // The latest snapshot, not the statement's: a fence committed after this
    // statement (or this REPEATABLE READ transaction) began must count now,
    // and the cache it fills outlives the transaction.
    PushActiveSnapshot(GetLatestSnapshot());
    cache.region = MemoryContextStrdup(cache.context, region);
    cache.own = {0, false, nullptr};
    // The writer's session: its search_path must not decide whether it may
    // write (spi_run pins it; the operators are pg_catalog's by name).
    const Oid type = TEXTOID;
    const Datum arg = CStringGetTextDatum(region);
    // A region that learned of its own removal refuses writes as a fenced
    // one does: no link carries them any more (causal.region_removed()).
    // Before ALTER EXTENSION UPDATE to 0.4.0 there is no removal to learn.
    spi_run(OidIsValid(removed_relid)
                ? "SELECT r.epoch, r.state OPERATOR(pg_catalog.=) 'fenced'"
                  "    OR EXISTS (SELECT FROM causal.removed_regions x WHERE x.region OPERATOR(pg_catalog.=) r.region"
                  "                AND x.epoch OPERATOR(pg_catalog.>=) r.epoch)"
                  "  FROM causal.regions r WHERE r.region OPERATOR(pg_catalog.=) $1"
                : "SELECT r.epoch, r.state OPERATOR(pg_catalog.=) 'fenced' FROM causal.regions r"
                  " WHERE r.region OPERATOR(pg_catalog.=) $1",
            SPI_OK_SELECT, {1, &type, &arg}, true);
    if (SPI_processed > 0) {
        cache.own.epoch = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        cache.own.fenced = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    }
    cache.own.live_region = region_for_clients(region, cache.context);
    FenceList fences = read_fences(cache.context, true);
    cache.fences = fences.fences;
    cache.fence_count = fences.count;
    PopActiveSnapshot();
    SPI_finish();
    cache.read_after = seen;
    cache.valid = invalidations == seen;
}

void ensure_loaded() {
    // Catch up with committed changes before trusting the cache.
    AcceptInvalidationMessages();
    if (!cache.valid || cache.read_after != invalidations ||
        std::strcmp(cache.region, current_region()) != 0)
        load();
}

}  // namespace

RegionState own_region_state() {
    ensure_loaded();
    return cache.own;
}

bool fenced_write(const char* region, int64_t epoch, const Hlc& hlc) {
    ensure_loaded();
    for (uint64 i = 0; i < cache.fence_count; ++i)
        if (merge::fenced_write(cache.fences[i], region, epoch, hlc)) return true;
    return false;
}

bool fenced_deletion(const char* region, const Hlc& deleted_at) {
    ensure_loaded();
    for (uint64 i = 0; i < cache.fence_count; ++i)
        if (merge::fenced_deletion(cache.fences[i], region, deleted_at)) return true;
    return false;
}

FenceList read_fences_into(MemoryContext context, bool new_snapshot) {
    SPI_connect();
    FenceList fences = read_fences(context, !new_snapshot);
    SPI_finish();
    return fences;
}

}  // namespace causal::pg

// AFTER ROW trigger on causal.regions and causal.fences: tells every backend,
// at commit, that its cached view is stale.
CAUSAL_FUNCTION(regions_changed) {
    auto* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("regions_changed() must be called as a trigger")));
    CacheInvalidateRelcacheByRelid(RelationGetRelid(trigger->tg_relation));
    // A fence that landed or arrived: the relay looks for its region's
    // tombstones here (causal.fence_scans). (The trigger is on the two
    // tables alone.)
    if (std::strcmp(RelationGetRelationName(trigger->tg_relation), "fences") == 0) causal::pg::wake_relay_at_commit();
    return PointerGetDatum(nullptr);
}

namespace {

// The fences as the calling statement sees them, read once per query.
const causal::pg::FenceList& statement_fences(FunctionCallInfo fcinfo) {
    using namespace causal::pg;
    if (fcinfo->flinfo->fn_extra == nullptr) {
        auto* fences = static_cast<FenceList*>(MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FenceList)));
        *fences = read_fences_into(fcinfo->flinfo->fn_mcxt, false);
        fcinfo->flinfo->fn_extra = fences;
    }
    return *static_cast<const FenceList*>(fcinfo->flinfo->fn_extra);
}

std::string_view text_view(const text* value) { return {VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)}; }

}  // namespace

// causal.is_orphan(region, epoch, hlc): the core's orphan rule against the
// fences as the statement sees them (STABLE).
CAUSAL_FUNCTION(is_orphan) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_BOOL(false);
    const causal::pg::FenceList& fences = statement_fences(fcinfo);
    const std::string_view region = text_view(PG_GETARG_TEXT_PP(0));
    const int64 epoch = PG_GETARG_INT64(1);
    const causal::Hlc& hlc = *causal::pg::arg_hlc(fcinfo, 2);
    for (size_t i = 0; i < fences.count; ++i)
        if (causal::merge::fenced_write(fences.fences[i], region, epoch, hlc)) PG_RETURN_BOOL(true);
    PG_RETURN_BOOL(false);
}

// causal.is_fenced_deletion(written_by, deleted_at): the core's rule for a
// deletion, likewise.
CAUSAL_FUNCTION(is_fenced_deletion) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) PG_RETURN_BOOL(false);
    const causal::pg::FenceList& fences = statement_fences(fcinfo);
    const std::string_view region = text_view(PG_GETARG_TEXT_PP(0));
    const causal::Hlc& deleted_at = *causal::pg::arg_hlc(fcinfo, 1);
    for (size_t i = 0; i < fences.count; ++i)
        if (causal::merge::fenced_deletion(fences.fences[i], region, deleted_at)) PG_RETURN_BOOL(true);
    PG_RETURN_BOOL(false);
}

// causal.region_for_clients(region): where a fenced region's clients go.
CAUSAL_FUNCTION(region_for_clients) {
    using namespace causal::pg;
    const char* region = text_to_cstring(PG_GETARG_TEXT_PP(0));
    MemoryContext caller = CurrentMemoryContext;
    SPI_connect();
    char* found = region_for_clients(region, caller);
    SPI_finish();
    if (found == nullptr) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(cstring_to_text(found));
}
