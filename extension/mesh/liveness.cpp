// Peer liveness from the replication streams, and self-fencing.
//
// A background worker in causal.database writes this region's heartbeat,
// a row of causal.heartbeats that replication carries to every peer (by
// relay too), and watches the peers' heartbeats arrive. A peer is heard when
// its heartbeat changed within causal.self_fence_after. When this region
// hears fewer than a majority (itself counted) for that long, it fences
// itself: the insert trigger refuses local writes with 5C001 until a
// majority is heard again. No network protocol of its own: if replication
// from a peer stops, so does the peer's heartbeat.

#include "mesh/liveness.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/fencing.hpp"
#include "core/links.hpp"
#include "infra/bgworker.hpp"
#include "infra/guard.hpp"
#include "hlc/hlc_datum.hpp"
#include "infra/postgres.hpp"
#include "mesh/relay.hpp"
#include "mesh/replication_role.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "read/stable.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_subscription.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "replication/worker_internal.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace causal::pg {

int self_fence_after_setting = 0;
int heartbeat_interval_setting = 1000;
char* liveness_database = nullptr;

fencing::Timing liveness_timing() {
    return fencing::effective_timing({heartbeat_interval_setting, relay_after_setting, self_fence_after_setting});
}

namespace {

constexpr int kMaxPeers = 64;
constexpr long kNapMs = 100;
constexpr int64 kOwnerCheckMs = 1000;
int64 last_owner_check_ms = 0;

struct Peer {
    char region[NAMEDATALEN];
    int64 beat;        // the last heartbeat value seen (the peer's clock, ms)
    int64 heard_ms;    // when it last changed (this instance's clock, ms); 0: never
    int64 sent_ms;     // when its stream last sent anything (the peer's clock, ms); 0: not since the start
    int64 received_ms; // when this region last received it (this clock, ms); 0: not since the start
    int64 lag_ms;      // sent_ms - beat: how far behind its sender this region is
    bool behind;       // still catching up on its backlog (fencing::catching_up)
};

// What the worker knows, for every backend. Under an LWLock: readers copy
// it out (peers_now()) and judge outside the lock.
struct Shared {
    LWLock* lock;
    bool self_fenced;
    bool watching;      // the worker runs and this region is registered
    int regions;        // registered regions, this one included
    int peer_count;
    int64 fenced_since_ms;
    int64 evaluated_ms;  // the worker's last round: a stale one means it is not running
    // Until when this region is open for writes, by the last round: the
    // insert path's whole check, without the lock, while all is well.
    pg_atomic_uint64 open_until_ms;
    Peer peers[kMaxPeers];
};

Shared* shared = nullptr;

int64 now_ms() { return static_cast<int64>(causal::system_wall_ms()); }

// The shared state as it is now, copied out under the lock.
struct SharedCopy {
    bool self_fenced;
    bool watching;
    int regions;
    int peer_count;
    int64 fenced_since_ms;
    int64 evaluated_ms;
    Peer peers[kMaxPeers];
};
void copy_out(SharedCopy& out) {
    LWLockAcquire(shared->lock, LW_SHARED);
    out.self_fenced = shared->self_fenced;
    out.watching = shared->watching;
    out.regions = shared->regions;
    out.peer_count = shared->peer_count;
    out.fenced_since_ms = shared->fenced_since_ms;
    out.evaluated_ms = shared->evaluated_ms;
    std::memcpy(out.peers, shared->peers, sizeof(Peer) * shared->peer_count);
    LWLockRelease(shared->lock);
}

bool heard(const Peer& peer, int64 now, int64 window_ms) {
    return fencing::heard_within(peer.heard_ms > 0 ? std::optional<int64_t>(now - peer.heard_ms) : std::nullopt,
                                 window_ms);
}
int heard_count(const Peer* peers, int count, int64 now, int64 window_ms) {
    int n = 0;
    for (int i = 0; i < count; ++i) n += heard(peers[i], now, window_ms);
    return n;
}

// The relay runs as the replication role, so a process of the role's
// starts it; and a replication worker still running as its subscription's
// former owner (a superuser, before 0.4.0) is restarted as the new one. In
// a transaction of its own, last in the round: a failure here costs no beat,
// and the round's view of its peers is published already (were it not, a
// supervision that fails every round would leave that view stale, and the
// region would fence itself while it hears every peer).
void supervise_replication(bool installed, int64 now) {
    if (!installed) return;
    const bool check_owners = now - last_owner_check_ms >= kOwnerCheckMs;
    if (!check_owners && !relay_supervision_due()) return;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    relay_supervise();
    if (check_owners) {
        last_owner_check_ms = now;
        (void)restart_workers_of_former_owners();
    }
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
}

// When the apply worker of this region's link from `peer.region` last
// received anything, and when the peer sent it (its walsender's clock):
// PostgreSQL keeps both in the worker's shared slot. Zero where no worker
// runs or nothing came yet. In a transaction: the link is found by name in
// the catalog.
void read_stream_times(Peer& peer, const char* region) {
    peer.sent_ms = peer.received_ms = 0;
    // No destructor across the catalog lookup, which may raise (the worker's
    // error block jumps over this frame).
    char link[NAMEDATALEN * 3];
    cpp_guard([&] { strlcpy(link, causal::link_name(peer.region, region).c_str(), sizeof link); });
    const Oid subscription = get_subscription_oid(link, true);
    if (!OidIsValid(subscription)) return;
    TimestampTz sent = 0, received = 0;
    LWLockAcquire(LogicalRepWorkerLock, LW_SHARED);
    if (const LogicalRepWorker* worker = logicalrep_worker_find(subscription, InvalidOid, true)) {
        sent = worker->last_send_time;
        received = worker->last_recv_time;
    }
    LWLockRelease(LogicalRepWorkerLock);
    auto unix_ms = [](TimestampTz at) {
        return at == 0 ? int64{0}
                       : at / 1000 + int64{POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE} * SECS_PER_DAY * 1000;
    };
    peer.sent_ms = unix_ms(sent);
    peer.received_ms = unix_ms(received);
}

// One round: beat if it is time, then read the peers' beats. Runs in a
// transaction of its own.
void watch_once(int64& last_beat_ms) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "pg_causal liveness");

    spi_run("SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'pg_causal'",
            SPI_OK_SELECT);
    const bool installed = SPI_processed > 0;
    const char* region = region_setting ? region_setting : "";
    bool registered = false;
    int regions = 0;
    if (installed && region[0] != '\0') {
        const Oid type = TEXTOID;
        const Datum arg = CStringGetTextDatum(region);
        spi_run("SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE r.region OPERATOR(pg_catalog.=) $1)"
                "  FROM causal.regions r",
                SPI_OK_SELECT, {1, &type, &arg});
        bool isnull = false;
        regions = static_cast<int>(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
        registered = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)) > 0;
    }
    const int64 now = now_ms();
    const fencing::Timing timing = liveness_timing();
    if (registered && now - last_beat_ms >= timing.heartbeat_interval_ms) {
        // With it, this region's stable point: its peers then hold every
        // message it stamped below that (stable.hpp).
        char stable[kHlcTextMax];
        format(local_stable(), stable);
        const Oid types[3] = {TEXTOID, INT8OID, TEXTOID};
        const Datum args[3] = {CStringGetTextDatum(region), Int64GetDatum(now), CStringGetTextDatum(stable)};
        // Above the last beat even if the clock was set back: the register
        // would drop an older beat, and the region would look dead.
        spi_run("INSERT INTO causal.heartbeats (region, beat, stable) SELECT $1, greatest($2,"
                " (SELECT h.beat OPERATOR(pg_catalog.+) 1 FROM causal.heartbeats h"
                "   WHERE h.region OPERATOR(pg_catalog.=) $1)), $3::causal.hlc",
                SPI_OK_INSERT, {3, types, args});
        last_beat_ms = now;
    }
    Peer seen[kMaxPeers];
    int seen_count = 0;
    if (registered) {
        const Oid type = TEXTOID;
        const Datum arg = CStringGetTextDatum(region);
        spi_run("SELECT r.region, coalesce(h.beat, 0) FROM causal.regions r"
                "  LEFT JOIN causal.heartbeats h ON h.region OPERATOR(pg_catalog.=) r.region"
                " WHERE r.region OPERATOR(pg_catalog.<>) $1 ORDER BY r.region COLLATE \"C\"",
                SPI_OK_SELECT, {1, &type, &arg}, false, kMaxPeers);
        bool isnull = false;
        for (uint64 i = 0; i < SPI_processed; ++i) {
            Peer& p = seen[seen_count++];
            strlcpy(p.region, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1), NAMEDATALEN);
            p.beat = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
            p.heard_ms = 0;  // not heard yet: with self-fencing on, the region starts fenced
            read_stream_times(p, region);
        }
    }
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);

    // Keep when each peer was last heard; a changed beat is news. Judged
    // on a copy: only the worker writes the state, so it stays as copied.
    SharedCopy before;
    copy_out(before);
    for (int i = 0; i < seen_count; ++i) {
        for (int j = 0; j < before.peer_count; ++j) {
            if (std::strcmp(before.peers[j].region, seen[i].region) != 0) continue;
            seen[i].heard_ms = seen[i].beat != before.peers[j].beat ? now : before.peers[j].heard_ms;
        }
    }
    // Whether each peer's backlog is still arriving: for readers (5C003)
    // and the relay (its last seconds pulled meanwhile).
    const int64 window = fencing::current_within_ms(timing, max_clock_offset_ms);
    const int64 up_ms = (GetCurrentTimestamp() - PgStartTime) / 1000;
    for (int i = 0; i < seen_count; ++i) {
        Peer& p = seen[i];
        auto ago = [&](int64 at) { return at > 0 ? std::optional<int64_t>(now - at) : std::nullopt; };
        p.lag_ms = p.sent_ms > 0 ? p.sent_ms - p.beat : 0;
        p.behind = fencing::catching_up({p.beat > 0, p.sent_ms > 0 ? std::optional<int64_t>(p.lag_ms) : std::nullopt,
                                         ago(p.heard_ms), ago(p.received_ms), up_ms},
                                        window);
    }
    const int heard = heard_count(seen, seen_count, now, timing.self_fence_after_ms);
    const bool fence = registered && timing.self_fence_after_ms > 0 &&
                       fencing::cut_off(static_cast<size_t>(regions), static_cast<size_t>(heard));
    const bool was = before.self_fenced;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    std::memcpy(shared->peers, seen, sizeof(Peer) * seen_count);
    shared->peer_count = seen_count;
    shared->regions = regions;
    shared->watching = registered;
    shared->evaluated_ms = now;
    shared->self_fenced = fence;
    if (fence && !was) shared->fenced_since_ms = now;
    pg_atomic_write_u64(&shared->open_until_ms, !registered ? PG_UINT64_MAX
                                                : fence      ? 0
                                                             : static_cast<uint64>(now + timing.self_fence_after_ms));
    LWLockRelease(shared->lock);
    if (fence != was)
        ereport(fence ? WARNING : LOG,
                (errmsg(fence ? "region \"%s\" fenced itself: it heard from %d of %d regions within %d ms"
                              : "region \"%s\" lifted its own fence: it hears from %d of %d regions again "
                                "(within %d ms)",
                        region, heard + 1, regions, static_cast<int>(timing.self_fence_after_ms))));
    supervise_replication(installed, now);
}

}  // namespace

constexpr const char* kTrancheName = "pg_causal liveness";

void liveness_request_shmem() {
    RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
    RequestNamedLWLockTranche(kTrancheName, 1);
}

void liveness_startup_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared*>(ShmemInitStruct("pg_causal liveness", sizeof(Shared), &found));
    if (!found) {
        std::memset(shared, 0, sizeof(Shared));
        pg_atomic_init_u64(&shared->open_until_ms, 0);
    }
    shared->lock = &GetNamedLWLockTranche(kTrancheName)->lock;
    LWLockRelease(AddinShmemInitLock);
}

void liveness_register_worker() {
    // The restart interval is also how often it looks for causal.database
    // until it exists.
    register_worker("pg_causal liveness", "causal_liveness_worker_main",
                    BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION, BgWorkerStart_RecoveryFinished, 5);
}

SelfFence self_fence() {
    SelfFence state = {false, 0, 0, 0};
    const int64 window_ms = liveness_timing().self_fence_after_ms;
    if (shared == nullptr || window_ms <= 0) return state;
    const int64 now = now_ms();
    if (static_cast<uint64>(now) <= pg_atomic_read_u64(&shared->open_until_ms)) return state;
    SharedCopy s;
    copy_out(s);
    // A worker that stopped evaluating (it failed, or has not started) must
    // not leave the region open: fail closed.
    const bool stale = s.watching && now - s.evaluated_ms > window_ms;
    if (s.self_fenced || stale) {
        state.fenced = true;
        state.regions = s.regions;
        state.heard = heard_count(s.peers, s.peer_count, now, window_ms);
        state.since_ms = s.self_fenced ? now - s.fenced_since_ms : now - s.evaluated_ms;
    }
    return state;
}

int64_t peer_heard_ms(const char* region) {
    if (shared == nullptr) return -1;
    SharedCopy s;
    copy_out(s);
    for (int i = 0; i < s.peer_count; ++i)
        if (std::strcmp(s.peers[i].region, region) == 0) return s.peers[i].heard_ms;
    return -1;
}

Backlog peer_backlog() {
    Backlog backlog{};
    if (shared == nullptr) return backlog;
    SharedCopy s;
    copy_out(s);
    const int64 now = now_ms();
    const int64 window = fencing::current_within_ms(liveness_timing(), max_clock_offset_ms);
    // Just started, before the worker's first round: nobody knows yet.
    if (s.evaluated_ms == 0 && (GetCurrentTimestamp() - PgStartTime) / 1000 <= fencing::kStreamStartGraceMs) {
        backlog.unknown = true;
        return backlog;
    }
    // A worker that stopped evaluating says nothing any more.
    if (!s.watching || now - s.evaluated_ms > window) return backlog;
    int64 freshest = PG_INT64_MAX;
    for (int i = 0; i < s.peer_count; ++i) {
        const Peer& peer = s.peers[i];
        if (peer.behind) {
            if (backlog.peer[0] == '\0') {
                strlcpy(backlog.peer, peer.region, sizeof backlog.peer);
                backlog.lag_ms = peer.lag_ms;
            }
        } else if (peer.heard_ms > 0 && now - peer.heard_ms <= window && now - peer.heard_ms < freshest) {
            freshest = now - peer.heard_ms;
            strlcpy(backlog.current_peer, peer.region, sizeof backlog.current_peer);
        }
    }
    return backlog;
}

bool replaying_backlog_of(const char* region) {
    if (shared == nullptr) return false;
    SharedCopy s;
    copy_out(s);
    for (int i = 0; i < s.peer_count; ++i)
        if (s.peers[i].behind && (region == nullptr || std::strcmp(s.peers[i].region, region) == 0)) return true;
    return false;
}

bool some_peer_unheard(int64_t ms) {
    if (shared == nullptr) return false;
    SharedCopy s;
    copy_out(s);
    const int64 now = now_ms();
    return s.watching && heard_count(s.peers, s.peer_count, now, ms) < s.peer_count;
}

}  // namespace causal::pg

using namespace causal::pg;

extern "C" PGDLLEXPORT void causal_liveness_worker_main(Datum);

namespace {

// The configuration's order, checked where it is used: at start and on
// every reload.
void warn_of_timing() {
    const causal::fencing::Timing configured{heartbeat_interval_setting, relay_after_setting,
                                             self_fence_after_setting};
    for (const std::string& warning : cpp_guard([&] { return causal::fencing::timing_warnings(configured); }))
        ereport(WARNING, (errmsg("%s", warning.c_str()),
                          errhint("Keep causal.heartbeat_interval < causal.relay_after < causal.self_fence_after "
                                  "(0 turns the last two off).")));
}

int64 last_beat = 0;

}  // namespace

void causal_liveness_worker_main(Datum) {
    connect_worker_to_mesh_database();
    warn_of_timing();
    run_rounds(kNapMs, [] { watch_once(last_beat); }, [] {}, [] { warn_of_timing(); });
}

// What this instance hears of its peers.
CAUSAL_FUNCTION(liveness) {
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (shared == nullptr) return Datum(0);
    SharedCopy s;
    copy_out(s);
    const Peer* peers = s.peers;
    const int64 now = static_cast<int64>(causal::system_wall_ms());
    for (int i = 0; i < s.peer_count; ++i) {
        Datum values[3];
        bool nulls[3] = {false, false, false};
        values[0] = CStringGetTextDatum(peers[i].region);
        values[1] = TimestampTzGetDatum(unix_ms_to_timestamptz(static_cast<uint64_t>(peers[i].heard_ms)));
        values[2] = Int64GetDatum(now - peers[i].heard_ms);
        nulls[1] = nulls[2] = peers[i].heard_ms == 0;  // never heard since this server started
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return Datum(0);
}

CAUSAL_FUNCTION(self_fenced) { PG_RETURN_BOOL(self_fence().fenced); }
