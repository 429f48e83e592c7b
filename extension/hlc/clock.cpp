// The instance clock: shared memory, the persisted ceiling, the background
// worker that keeps the ceiling ahead, and the SQL functions over them.
#include "hlc/clock.hpp"
#include "infra/bgworker.hpp"

#include <new>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "infra/guard.hpp"
#include "hlc/hlc_datum.hpp"
#include "infra/settings.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace causal::pg {

namespace {

// The persisted ceiling runs this far ahead of the clock. After a crash the
// instance waits out at most the remaining window before it starts, so its
// first timestamps are not ahead of real time; a smaller window costs more
// fsyncs (one per half window, by the worker), a larger one a longer wait.
constexpr uint64_t kCeilingWindowMs = 1000;
// The worker renews the ceiling once less than this is left, so that backends
// practically never persist it themselves on the hot path.
constexpr uint64_t kWorkerKeepAheadMs = kCeilingWindowMs / 2;
constexpr long kWorkerNapMs = 100;
// A persisted ceiling further ahead of the wall clock than this at startup
// means the clock was set back: waiting it out could take minutes, so the
// clock starts above it instead and runs ahead of the wall clock.
constexpr uint64_t kStartupWaitLimitMs = 2 * kCeilingWindowMs;

constexpr const char* kShmemName = "pg_causal clock";
constexpr const char* kTrancheName = "pg_causal clock ceiling";
constexpr const char* kCeilingFileName = "pg_causal.clock";

ClockState* shared_clock = nullptr;
LWLock* ceiling_lock = nullptr;

std::string ceiling_path() { return std::string(DataDir) + "/" + kCeilingFileName; }

ClockState& require_clock() {
    if (shared_clock == nullptr)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("the pg_causal clock is not running"),
                 errdetail("The clock lives in shared memory, which pg_causal can only set up "
                           "when it is loaded at server start."),
                 errhint("Add pg_causal to shared_preload_libraries in postgresql.conf and "
                         "restart the server.")));
    return *shared_clock;
}

void persist_ceiling(uint64_t ceiling_ms, int elevel) {
    cpp_guard([&] { CeilingFile(ceiling_path()).write(ceiling_ms); }, elevel);
}

// Makes the durable ceiling exceed needed_ms + keep_ahead_ms. Serialized by
// the LWLock so that one writer persists while the others wait and re-check.
void ensure_ceiling_above(uint64_t needed_ms, uint64_t keep_ahead_ms) {
    ClockState& clock = require_clock();
    if (clock.ceiling_ms.load(std::memory_order_acquire) > needed_ms + keep_ahead_ms) return;
    LWLockAcquire(ceiling_lock, LW_EXCLUSIVE);
    if (clock.ceiling_ms.load(std::memory_order_acquire) <= needed_ms + keep_ahead_ms) {
        uint64_t target = next_ceiling(needed_ms, system_wall_ms(), kCeilingWindowMs);
        persist_ceiling(target, ERROR);
        clock.ceiling_ms.store(target, std::memory_order_release);
    }
    LWLockRelease(ceiling_lock);
}

// Runs one clock event to completion: waits out a full logical counter and
// persists the ceiling when the core asks for it.
uint64_t run_clock(std::optional<uint64_t> remote_wall) {
    ClockState& clock = require_clock();
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("cannot issue hlc timestamps during recovery"),
                        errdetail("A standby has its primary's node id but not its clock: its "
                                  "timestamps could repeat the primary's."),
                        errhint("Issue timestamps on the primary.")));
    for (;;) {
        uint64_t now = system_wall_ms();
        Tick tick = advance(clock, now, remote_wall, static_cast<uint64_t>(max_clock_offset_ms));
        switch (tick.status) {
            case TickStatus::Issued:
                return tick.wall;
            case TickStatus::WaitForWallMs: {
                uint64_t wait_ms = tick.ms >= now ? tick.ms - now + 1 : 1;
                pg_usleep(static_cast<long>(std::min<uint64_t>(wait_ms, 1000)) * 1000L);
                CHECK_FOR_INTERRUPTS();
                break;
            }
            case TickStatus::NeedsCeiling:
                ensure_ceiling_above(tick.ms, 0);
                break;
            case TickStatus::Exhausted:
                ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
                                errmsg("hlc physical time is exhausted"),
                                errdetail("48 bits of milliseconds end in the year 10889.")));
        }
    }
}

// In the postmaster, before any backend exists: start above everything the
// previous life of this instance issued.
void start_clock_from_disk(ClockState& clock) {
    uint64_t persisted = cpp_guard(
        [] { return CeilingFile(ceiling_path()).read().value_or(0); }, FATAL);
    uint64_t now = system_wall_ms();
    if (persisted > now) {
        uint64_t behind = persisted - now;
        if (behind <= kStartupWaitLimitMs) {
            pg_usleep(static_cast<long>(behind + 1) * 1000L);
            now = system_wall_ms();
        } else {
            ereport(WARNING,
                    (errmsg("the system clock is %llu ms behind pg_causal's persisted clock ceiling",
                            static_cast<unsigned long long>(behind)),
                     errdetail("Timestamps continue above the ceiling, ahead of the system clock, "
                               "until the system clock catches up."),
                     errhint("Check the system clock and its time synchronization.")));
        }
    }
    clock.last.store(restart_floor(persisted), std::memory_order_release);
    uint64_t ceiling = next_ceiling(persisted, now, kCeilingWindowMs);
    persist_ceiling(ceiling, FATAL);
    clock.ceiling_ms.store(ceiling, std::memory_order_release);
}

// A peer whose clock runs ahead sends many rows, and an apply worker would
// log one WARNING per row: at most one per process every
// kNotAdoptedWarningEveryMs, which counts the ones it stands for.
constexpr uint64_t kNotAdoptedWarningEveryMs = 10000;
uint64_t not_adopted_warned_ms = 0;
uint64_t not_adopted_unwarned = 0;

void warn_not_adopted(const Hlc& remote, uint64_t lead_ms) {
    const uint64_t now = system_wall_ms();
    if (not_adopted_warned_ms != 0 && now - not_adopted_warned_ms < kNotAdoptedWarningEveryMs) {
        ++not_adopted_unwarned;
        return;
    }
    char text[kHlcTextMax];
    format(remote, text);
    ereport(WARNING,
            (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
             errmsg("hlc %s is %llu ms ahead of the local clock; not adopted", text,
                    static_cast<unsigned long long>(lead_ms)),
             not_adopted_unwarned > 0
                 ? errdetail("causal.max_clock_offset is %d ms. The local clock ticked without moving past it. "
                             "This process met %llu more such hlcs since its last warning of them.",
                             max_clock_offset_ms, static_cast<unsigned long long>(not_adopted_unwarned))
                 : errdetail("causal.max_clock_offset is %d ms. The local clock ticked without moving past it.",
                             max_clock_offset_ms),
             errhint("Check the clock of node %u; causal.clock_status counts these.",
                     static_cast<unsigned>(remote.node))));
    not_adopted_warned_ms = now;
    not_adopted_unwarned = 0;
}

}  // namespace

void clock_request_shmem() {
    RequestAddinShmemSpace(MAXALIGN(sizeof(ClockState)));
    RequestNamedLWLockTranche(kTrancheName, 1);
}

void clock_startup_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    void* memory = ShmemInitStruct(kShmemName, sizeof(ClockState), &found);
    ceiling_lock = &GetNamedLWLockTranche(kTrancheName)->lock;
    if (!found) {
        ClockState* clock = new (memory) ClockState();
        start_clock_from_disk(*clock);
    }
    shared_clock = static_cast<ClockState*>(memory);
    LWLockRelease(AddinShmemInitLock);
}

void clock_register_worker() {
    register_worker("pg_causal clock", "causal_clock_worker_main", BGWORKER_SHMEM_ACCESS,
                    BgWorkerStart_PostmasterStart, 1);
}

Hlc clock_now() {
    Hlc value;
    value.node = require_node_id();
    value.wall = run_clock(std::nullopt);
    return value;
}

uint64_t clock_last_wall() { return require_clock().last.load(std::memory_order_acquire); }

Observation clock_observe(const Hlc& remote) {
    uint16_t node = require_node_id();
    RemoteCheck check = check_remote(require_clock(), remote.wall, system_wall_ms(),
                                     static_cast<uint64_t>(max_clock_offset_ms));
    if (!check.adopt) warn_not_adopted(remote, check.lead_ms);
    Hlc value;
    value.node = node;
    value.wall = run_clock(check.adopt ? std::optional<uint64_t>(remote.wall) : std::nullopt);
    return {value, check.adopt};
}

}  // namespace causal::pg

using namespace causal::pg;

extern "C" PGDLLEXPORT void causal_clock_worker_main(Datum);

void causal_clock_worker_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    run_rounds(
        kWorkerNapMs,
        [] {
            const uint64_t issued_ms =
                causal::Hlc::physical_ms_of(require_clock().last.load(std::memory_order_acquire));
            ensure_ceiling_above(std::max(issued_ms, causal::system_wall_ms()), kWorkerKeepAheadMs);
        },
        [] {}, [] {});
}

CAUSAL_FUNCTION(hlc_now) { return hlc_datum(clock_now()); }

CAUSAL_FUNCTION(hlc_observe) { return hlc_datum(clock_observe(*arg_hlc(fcinfo, 0)).value); }

CAUSAL_FUNCTION(hlc_current) {
    causal::Hlc value;
    value.node = require_node_id();
    value.wall = require_clock().last.load(std::memory_order_acquire);
    return hlc_datum(value);
}

// CockroachDB's cluster_logical_timestamp() is the transaction's timestamp:
// one value per transaction, however often it is called.
CAUSAL_FUNCTION(cluster_logical_timestamp) {
    static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
    static causal::Hlc cached;
    if (cached_lxid == InvalidLocalTransactionId || cached_lxid != MyProc->lxid) {
        cached = clock_now();
        cached_lxid = MyProc->lxid;
    }
    return cockroach_decimal_datum(cached);
}

CAUSAL_FUNCTION(gateway_region) { PG_RETURN_TEXT_P(cstring_to_text(require_region())); }

CAUSAL_FUNCTION(clock_status) {
    causal::ClockState& clock = require_clock();
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("clock_status must be called in a context that accepts a row")));
    desc = BlessTupleDesc(desc);

    uint64_t now = causal::system_wall_ms();
    uint64_t last = clock.last.load(std::memory_order_acquire);
    uint64_t last_ms = causal::Hlc::physical_ms_of(last);
    Datum values[9];
    bool nulls[9] = {};
    causal::Hlc current;
    current.wall = last;
    current.node = static_cast<uint16_t>(node_id_setting < 0 ? 0 : node_id_setting);
    values[0] = hlc_datum(current);
    nulls[0] = node_id_setting < 0;
    values[1] = Int32GetDatum(node_id_setting);
    nulls[1] = node_id_setting < 0;
    values[2] = CStringGetTextDatum(region_setting ? region_setting : "");
    nulls[2] = region_setting == nullptr || region_setting[0] == '\0';
    values[3] = TimestampTzGetDatum(unix_ms_to_timestamptz(now));
    values[4] = Int64GetDatum(last_ms > now ? static_cast<int64>(last_ms - now) : 0);
    values[5] = Int64GetDatum(static_cast<int64>(clock.offset_rejections.load()));
    values[6] = Int64GetDatum(static_cast<int64>(clock.max_remote_lead_ms.load()));
    values[7] = Int32GetDatum(max_clock_offset_ms);
    values[8] = TimestampTzGetDatum(unix_ms_to_timestamptz(clock.ceiling_ms.load()));
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
