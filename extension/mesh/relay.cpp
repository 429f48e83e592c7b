// Relay by pull: how a message reaches a region that cannot hear its writer.
//
// Each region publishes only what its own writes made (causal_messages,
// filtered on who wrote the row), so in steady state a message is decoded and
// sent once per peer, not once per pair of regions. When this region has not
// heard a peer A's heartbeat for causal.relay_after, and its subscription to
// A has received nothing for as long, its link from A is cut or A is gone (a
// stream that still brings data only lags: a pull would add load where there
// is too much already). Then this worker asks every peer it does hear, over
// the connection its subscription to that peer uses, for A's heartbeat as
// that peer holds it and every row carrying a stamp of A's (the row's hlc, a
// tombstone's deleted_at, a copy's hlc) at or after this region's stable
// point for A, in one snapshot. It stores the rows as the apply worker would
// (session_replication_role = replica, so the apply path deduplicates and
// joins copies), then the heartbeat, in one transaction. Along the source's
// index of latest stamps, a pull stores at most relay::kPagesPerPull pages
// and where it stopped, and the next goes on from there (pull_peer).
//
// Why the heartbeat may follow: the peer held every message A stamped below
// the stable point of the heartbeat it holds (it received them first,
// directly or by a pull of its own), and this region held A's messages
// below its own stable point for A. So after the pull this region holds
// every message A stamped below the new stable point too, and a client
// cursor built on it stays honest. A pulled heartbeat is a heartbeat heard,
// so liveness hears A through a peer while the direct link is cut, as it
// did when every region republished everything.
//
// A pull that brings nothing new (A is dead and every peer has told what it
// had) is asked again less and less often, up to once a minute: a region
// that reaches this one late, or a peer's own late pull, is still heard.
//
// The worker runs as the replication role (replication_role.hpp), started
// by the liveness worker once the extension is there. What it asks a peer
// runs nobody's code there: plain columns of plain tables (a view by a
// message table's name is refused, restrict_nonsystem_relation_kind, as
// pg_dump does; no row-level security policy runs, row_security = off),
// each value in its type's text form, which only a superuser's output
// function makes. It stores the rows as PostgreSQL's apply worker would
// (store.hpp): each value through its type's input function, a default for
// a column the peer lacks, into the executor, in replica mode, so that the
// apply path takes them; never through SQL.

#include "mesh/relay.hpp"

#include "mesh/link_errors.hpp"

#include <cstring>
#include <new>
#include <optional>
#include <type_traits>

#include "core/clock.hpp"
#include "core/links.hpp"
#include "core/relay.hpp"
#include "infra/bgworker.hpp"
#include "infra/guard.hpp"
#include "mesh/liveness.hpp"
#include "infra/owner.hpp"
#include "infra/postgres.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "table/store.hpp"
#include "table/table_shape.hpp"

extern "C" {
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_subscription.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "rewrite/rewriteHandler.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/walreceiver.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/tuplestore.h"
}

namespace causal::pg {

int relay_after_setting = 2000;

namespace {

constexpr int kMaxPeers = 64;
constexpr long kNapMs = 250;
// A peer that answers one request this late is not one to relay through:
// the round ends, and the next asks again. It bounds each wait for the peer,
// not the pull: storing what arrived is this region's work.
constexpr int kRemoteWaitMs = 10 * 1000;
// Rows per page of a pull: what is held in memory at once, whatever the
// backlog (libpq holds a whole answer before it returns it).
constexpr int kPageRows = 1000;

int64 now_ms() { return static_cast<int64>(causal::system_wall_ms()); }

// Counted since the server started, for the monitoring queries: pulls from
// a source (each brings what it holds of every unheard peer), the rows and
// pages they stored, and how long they took.
struct RelayStats {
    slock_t mutex;
    int64 pulls;
    int64 failed_pulls;
    int64 rows;
    int64 pages;
    int64 microseconds;
    TimestampTz last_pull_at;
    // Bumped as a transaction that asked for a pull (causal.request_pull())
    // commits: the relay reads causal.pull_requests when it moved.
    pg_atomic_uint64 requests_committed;
};
RelayStats* shared_relay_stats = nullptr;

// What one pull did so far.
struct PullCount {
    int64 rows = 0;
    int64 pages = 0;
};

void count_pull(const PullCount& count, bool failed, TimestampTz started) {
    if (shared_relay_stats == nullptr) return;
    const TimestampTz now = GetCurrentTimestamp();
    SpinLockAcquire(&shared_relay_stats->mutex);
    shared_relay_stats->pulls += failed ? 0 : 1;
    shared_relay_stats->failed_pulls += failed ? 1 : 0;
    shared_relay_stats->rows += count.rows;
    shared_relay_stats->pages += count.pages;
    shared_relay_stats->microseconds += now - started;
    shared_relay_stats->last_pull_at = now;
    SpinLockRelease(&shared_relay_stats->mutex);
}

// Rows a tail stored: rows and pages, no pull.
void count_rows(const PullCount& count) {
    if (shared_relay_stats == nullptr || count.rows == 0) return;
    SpinLockAcquire(&shared_relay_stats->mutex);
    shared_relay_stats->rows += count.rows;
    shared_relay_stats->pages += count.pages;
    SpinLockRelease(&shared_relay_stats->mutex);
}

// What the worker knows of a peer between rounds.
struct PeerState {
    char region[NAMEDATALEN];
    relay::Backoff backoff;
};
PeerState states[kMaxPeers];
int state_count = 0;
// Pulls asked for: the count of committed requests last read, and whether
// the last view had any left.
uint64 requests_seen = 0;
bool requests_pending = false;

PeerState& state_of(const char* region) {
    for (int i = 0; i < state_count; ++i)
        if (std::strcmp(states[i].region, region) == 0) return states[i];
    if (state_count == kMaxPeers) state_count = 0;  // more peers than a mesh has: start over
    PeerState& s = states[state_count++];
    s = PeerState{};
    strlcpy(s.region, region, NAMEDATALEN);
    return s;
}

// One round's view of the mesh, read in a transaction of its own and kept in
// the round's memory context.
struct Peer {
    char* region;
    int node_id;
    char* stable;    // this region's stable point for it, or nullptr
    char* conninfo;  // of this region's subscription to it, or nullptr
    relay::PeerView seen;  // what the round's decisions go by (core/relay.hpp)
    bool unheard;          // a target: its rows are pulled this round
    uint64 news;           // this round's digest of what pulls brought of it
    bool unfinished;       // a pull of it stopped at its page budget: the next round goes on
    bool requested;        // causal.pull_requests asks for its own rows, pulled from itself
    char* requested_since; // ... since this stable point (nullptr: all)
    bool bodies;           // asked for live copies of messages a fenced deletion erased here
};
struct Table {
    Oid relid;
    char* name;  // schema-qualified, quoted as needed
};
struct View {
    Peer* peers;
    int peer_count;
    Table* tables;
    int table_count;
    bool fence_scans;      // causal.fence_scans has fences to look under
    bool awaiting_bodies;  // causal.fenced_deletions has bodies to bring back
};

char* copy_text(uint64 row, int column, MemoryContext keep) {
    MemoryContext spi = MemoryContextSwitchTo(keep);
    char* value = spi_text(row, column);
    MemoryContextSwitchTo(spi);
    return value;
}

bool read_view(const char* region, View& view, MemoryContext keep) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "pg_causal relay: reading the mesh");
    const Oid type = TEXTOID, int_type = INT4OID;
    const Datum arg = CStringGetTextDatum(region), relay_after = Int32GetDatum(static_cast<int32>(liveness_timing().relay_after_ms));
    spi_run("SELECT 1 FROM pg_catalog.pg_extension e, causal.regions r"
            " WHERE e.extname OPERATOR(pg_catalog.=) 'pg_causal' AND r.region OPERATOR(pg_catalog.=) $1",
            SPI_OK_SELECT, {1, &type, &arg}, true);
    if (SPI_processed > 0) {
        spi_run("SELECT r.region, r.node_id, h.stable::text FROM causal.regions r"
                "  LEFT JOIN causal.heartbeats h ON h.region OPERATOR(pg_catalog.=) r.region"
                " WHERE r.region OPERATOR(pg_catalog.<>) $1 AND r.node_id IS NOT NULL",
                SPI_OK_SELECT, {1, &type, &arg}, true, kMaxPeers);
        view.peer_count = static_cast<int>(SPI_processed);
        view.peers = static_cast<Peer*>(MemoryContextAllocZero(keep, sizeof(Peer) * (view.peer_count + 1)));
        for (int i = 0; i < view.peer_count; ++i) {
            Peer& p = view.peers[i];
            p.region = copy_text(i, 1, keep);
            p.node_id = pg_strtoint32(spi_text(i, 2));
            p.stable = copy_text(i, 3, keep);
        }
        // The subscription to a peer, by the name causalctl gives it, and
        // how long ago its apply worker last received anything. Its
        // connection string is a superuser's to read in SQL: it is read
        // from the catalog.
        spi_run("SELECT s.subname::text, s.oid,"
                "       COALESCE((SELECT pg_catalog.max(w.last_msg_receipt_time)"
                "                              FROM pg_catalog.pg_stat_subscription w"
                "                             WHERE w.subid OPERATOR(pg_catalog.=) s.oid AND w.relid IS NULL)"
                "                           OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)"
                "                           pg_catalog.make_interval(secs => $1::pg_catalog.float8 / 1000)), true)"
                "  FROM pg_catalog.pg_subscription s"
                "  JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.subdbid"
                " WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() AND s.subenabled",
                SPI_OK_SELECT, {1, &int_type, &relay_after}, true);
        for (int i = 0; i < view.peer_count; ++i) {
            char link[NAMEDATALEN * 3];
            // An allocation failure there becomes a PostgreSQL error (guard.hpp).
            cpp_guard([&] { strlcpy(link, causal::link_name(view.peers[i].region, region).c_str(), sizeof link); });
            view.peers[i].seen.stream_silent = true;
            for (uint64 r = 0; r < SPI_processed; ++r) {
                if (std::strcmp(spi_text(r, 1), link) != 0) continue;
                Subscription* sub = GetSubscription(spi_oid(r, 2), true);
                if (sub != nullptr) view.peers[i].conninfo = MemoryContextStrdup(keep, sub->conninfo);
                view.peers[i].seen.stream_silent = std::strcmp(spi_text(r, 3), "t") == 0;
            }
            view.peers[i].seen.has_connection = view.peers[i].conninfo != nullptr;
        }
        // Pulls asked for (causalctl reseed): a peer's own rows from the peer.
        spi_run("SELECT r.peer, r.since::text FROM causal.pull_requests r", SPI_OK_SELECT, {}, true);
        for (uint64 r = 0; r < SPI_processed; ++r)
            for (int i = 0; i < view.peer_count; ++i) {
                if (std::strcmp(spi_text(r, 1), view.peers[i].region) != 0) continue;
                view.peers[i].requested = true;
                view.peers[i].requested_since = copy_text(r, 2, keep);
            }
        // Every message table, those outside their shape too: the rows go
        // through the apply path, which stores them as the table's owner
        // (and what PostgreSQL's apply worker would run before it, a
        // column's default, runs as the owner here).
        // Fenced deletions (sql/messages.sql): fences to look under, and
        // bodies they erased here to bring back.
        spi_run("SELECT EXISTS (SELECT FROM causal.fence_scans),"
                "       EXISTS (SELECT FROM causal.fenced_deletions d WHERE d.state OPERATOR(pg_catalog.=) 'awaiting body')",
                SPI_OK_SELECT, {}, true);
        view.fence_scans = std::strcmp(spi_text(0, 1), "t") == 0;
        view.awaiting_bodies = std::strcmp(spi_text(0, 2), "t") == 0;
        spi_run("SELECT m.relid::pg_catalog.oid, m.relid::text FROM causal.message_tables() m ORDER BY 1", SPI_OK_SELECT, {},
                true);
        view.table_count = static_cast<int>(SPI_processed);
        view.tables = static_cast<Table*>(MemoryContextAllocZero(keep, sizeof(Table) * (view.table_count + 1)));
        for (int i = 0; i < view.table_count; ++i) view.tables[i] = Table{spi_oid(i, 1), copy_text(i, 2, keep)};
    }
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
    return view.peer_count > 0;
}

// A row of `m` carries a stamp of the region with `node_id` at or after
// `since` (any, without): its hlc, its tombstone's, a copy's. Functions,
// not operators: they are named alike in every version of pg_causal a peer
// may run.
char* stamped_by(int node_id, const char* since) {
    auto stamped = [&](const char* column) {
        return psprintf("(causal.hlc_node(%s) OPERATOR(pg_catalog.=) %d%s)", column, node_id,
                        since ? psprintf(" AND causal.hlc_ge(%s, %s::causal.hlc)", column, quote_literal_cstr(since))
                              : "");
    };
    return psprintf("%s OR %s OR EXISTS (SELECT FROM pg_catalog.unnest(m.copies) c WHERE %s)", stamped("m.hlc"),
                    stamped("m.deleted_at"), stamped("c.hlc"));
}

// The rows of `table` carrying a stamp of `peer`'s at or after its stable
// point here, as the peer behind the connection holds them: `columns`.
// Along the stamps, each row ends with its key, (latest stamp, msg_id) as
// text, and `after` (that key, of the last row stored) resumes past it.
struct Key {
    char* stamp = nullptr;
    char* msg_id = nullptr;
};
// With `live_ids` (a uuid[] literal): the live rows of those messages, whatever their stamps.
char* rows_query(const Table& table, const char* columns, const Peer& peer, bool along_stamps, const Key& after,
                 const char* live_ids = nullptr) {
    if (live_ids != nullptr)
        return psprintf("SELECT %s FROM ONLY %s m WHERE m.msg_id OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.uuid[])"
                        " AND m.deleted_at IS NULL",
                        columns, table.name, quote_literal_cstr(live_ids));
    const char* stamps = stamped_by(peer.node_id, peer.stable);
    if (!along_stamps) return psprintf("SELECT %s FROM ONLY %s m WHERE %s", columns, table.name, stamps);
    // Along the peer's index of latest stamps: a row stamped at or after
    // the stable point carries a latest stamp at or after it, so the rows
    // read are the ones since then, of every region, not the whole table.
    const char* latest = "causal.latest_stamp(m.hlc, m.deleted_at, m.copies)";
    const char* past = after.stamp == nullptr
                           ? ""
                           : psprintf(" AND (%s, m.msg_id) OPERATOR(pg_catalog.>) (%s::causal.hlc, %s::pg_catalog.uuid)",
                                      latest, quote_literal_cstr(after.stamp), quote_literal_cstr(after.msg_id));
    return psprintf("SELECT %s, %s::pg_catalog.text, m.msg_id::pg_catalog.text FROM ONLY %s m"
                    " WHERE %s OPERATOR(pg_catalog.>=) %s::causal.hlc AND (%s)%s ORDER BY %s, m.msg_id",
                    columns, latest, table.name, latest, quote_literal_cstr(peer.stable), stamps, past, latest);
}

WalReceiverConn* connection = nullptr;
int pull_timeout = -1;

void close_connection() {
    if (pull_timeout >= 0) disable_timeout(static_cast<TimeoutId>(pull_timeout), false);
    if (connection != nullptr) walrcv_disconnect(connection);
    connection = nullptr;
}

// After a wait for the peer that ended with its answer: the timeout, if it
// fired between the answer and now, must not cancel what comes next.
void answered_in_time() {
    disable_timeout(static_cast<TimeoutId>(pull_timeout), false);
    if (get_timeout_indicator(static_cast<TimeoutId>(pull_timeout), true)) QueryCancelPending = false;
}

void pull_timed_out() {
    QueryCancelPending = true;
    InterruptPending = true;
    SetLatch(MyLatch);
}

WalRcvExecResult* remote(const char* query, int columns, const Oid* types, WalRcvExecStatus expected) {
    enable_timeout_after(static_cast<TimeoutId>(pull_timeout), kRemoteWaitMs);
    WalRcvExecResult* result = walrcv_exec(connection, query, columns, types);
    answered_in_time();
    if (result->status != expected)
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE), errmsg("pg_causal relay: a pull failed: %s",
                                                                  result->err ? result->err : "an unexpected answer"),
                        errcontext("remote query: %s", query)));
    return result;
}

// The peer's table by this one's name, locked there for the snapshot's
// transaction (ACCESS SHARE: no ALTER TABLE, no DROP until it ends), and
// its columns, if it is a plain table whose stamp columns have pg_causal's
// types: the query after this compares and unpacks them with pg_causal's
// functions, and a column of a type of the tenant's could otherwise reach
// them through a cast of the tenant's, run there as the link's login.
// nullptr, with a WARNING, otherwise.
WalRcvExecResult* remote_columns(const Table& table, const Peer& source) {
    const char* name = quote_literal_cstr(table.name);
    (void)remote(psprintf("LOCK TABLE ONLY %s IN ACCESS SHARE MODE", table.name), 0, nullptr, WALRCV_OK_COMMAND);
    const Oid types[2] = {TEXTOID, BOOLOID};
    WalRcvExecResult* columns =
        remote(psprintf("SELECT a.attname::pg_catalog.text,"
                        "       CASE a.attname WHEN 'hlc' THEN a.atttypid OPERATOR(pg_catalog.=) 'causal.hlc'::pg_catalog.regtype"
                        "                      WHEN 'deleted_at' THEN a.atttypid OPERATOR(pg_catalog.=) 'causal.hlc'::pg_catalog.regtype"
                        "                      WHEN 'copies' THEN a.atttypid OPERATOR(pg_catalog.=) 'causal.copy[]'::pg_catalog.regtype"
                        "                      ELSE true END"
                        "  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid"
                        " WHERE a.attrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass"
                        "   AND c.relkind OPERATOR(pg_catalog.=) 'r'"
                        "   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"
                        "   AND a.attgenerated OPERATOR(pg_catalog.=) ''",
                        name),
               2, types, WALRCV_OK_TUPLES);
    int stamps = 0;
    bool fit = true;
    TupleTableSlot* slot = MakeSingleTupleTableSlot(columns->tupledesc, &TTSOpsMinimalTuple);
    while (tuplestore_gettupleslot(columns->tuplestore, true, false, slot)) {
        bool isnull = false;
        const char* column = TextDatumGetCString(slot_getattr(slot, 1, &isnull));
        const bool typed = DatumGetBool(slot_getattr(slot, 2, &isnull));
        if (std::strcmp(column, "hlc") == 0 || std::strcmp(column, "deleted_at") == 0 ||
            std::strcmp(column, "copies") == 0) {
            ++stamps;
            fit = fit && typed;
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    tuplestore_rescan(columns->tuplestore);
    if (fit && stamps == 3) return columns;
    ereport(WARNING, (errmsg("pg_causal relay: %s of region \"%s\" is no plain table with pg_causal's stamp columns; "
                             "its rows are not pulled from there",
                             table.name, source.region)));
    return nullptr;
}

// The one boolean `query` returns there; false for NULL or no row.
bool remote_bool(const char* query) {
    const Oid type = BOOLOID;
    WalRcvExecResult* found = remote(query, 1, &type, WALRCV_OK_TUPLES);
    TupleTableSlot* slot = MakeSingleTupleTableSlot(found->tupledesc, &TTSOpsMinimalTuple);
    bool isnull = true, value = false;
    if (tuplestore_gettupleslot(found->tuplestore, true, false, slot)) value = DatumGetBool(slot_getattr(slot, 1, &isnull));
    ExecDropSingleTupleTableSlot(slot);
    walrcv_clear_result(found);
    return value && !isnull;
}

// Whether the peer holds `table` with the index of latest stamps that
// enable() makes (causal.stamp_index(), which a peer before it lacks):
// without it, the pull reads the whole table there.
bool remote_stamp_index(const Table& table) {
    return remote_bool("SELECT pg_catalog.to_regprocedure('causal.stamp_index(pg_catalog.regclass)') IS NOT NULL") &&
           remote_bool(psprintf("SELECT causal.stamp_index(%s::pg_catalog.regclass) IS NOT NULL",
                                quote_literal_cstr(table.name)));
}

// The columns a peer sends of a table (remote_columns' answer): their names,
// and the select list that asks for them.
struct SentColumns {
    char** names;
    int count;
    char* select_list;  // m.a, m.b, ...
};
SentColumns sent_columns(WalRcvExecResult* theirs) {
    SentColumns sent{static_cast<char**>(palloc(sizeof(char*) * (tuplestore_tuple_count(theirs->tuplestore) + 1))), 0,
                     nullptr};
    StringInfoData list;
    initStringInfo(&list);
    TupleTableSlot* slot = MakeSingleTupleTableSlot(theirs->tupledesc, &TTSOpsMinimalTuple);
    while (tuplestore_gettupleslot(theirs->tuplestore, true, false, slot)) {
        bool isnull = false;
        char* name = TextDatumGetCString(slot_getattr(slot, 1, &isnull));
        appendStringInfo(&list, "%sm.%s", sent.count ? ", " : "", quote_identifier(name));
        sent.names[sent.count++] = name;
    }
    ExecDropSingleTupleTableSlot(slot);
    sent.select_list = list.data;
    return sent;
}

// Stores rows a peer sent as text the way PostgreSQL's apply worker would
// (store.hpp): each value through its type's input function, and, for a
// column the peer lacks, its default, run as the table's owner (the owner's
// code, with the owner's rights). Open with the table locked.
struct Loader {
    Relation rel;
    TupleDesc desc;
    int count;        // columns sent
    int* positions;   // the attnum of each
    FmgrInfo* input;
    Oid* ioparams;
    EState* estate;
    ExprState** defaults;  // per attribute: a default to fill in, or nullptr
    bool defaulted;
    Datum* values;
    bool* nulls;
    MemoryContext per_row;
};

// The first of `sent` that this region's table lacks, or nullptr.
const char* lacked_here(Relation rel, const SentColumns& sent) {
    for (int i = 0; i < sent.count; ++i) {
        const AttrNumber attnum = SPI_fnumber(RelationGetDescr(rel), sent.names[i]);
        if (attnum <= 0 || TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attgenerated) return sent.names[i];
    }
    return nullptr;
}

Loader open_loader(Relation rel, const SentColumns& sent) {
    Loader l{};
    l.rel = rel;
    l.desc = RelationGetDescr(rel);
    const int n = l.desc->natts;
    l.count = sent.count;
    l.positions = static_cast<int*>(palloc(sizeof(int) * (sent.count + 1)));
    bool* is_sent = static_cast<bool*>(palloc0(sizeof(bool) * (n + 1)));
    l.input = static_cast<FmgrInfo*>(palloc(sizeof(FmgrInfo) * (sent.count + 1)));
    l.ioparams = static_cast<Oid*>(palloc(sizeof(Oid) * (sent.count + 1)));
    for (int i = 0; i < sent.count; ++i) {
        l.positions[i] = SPI_fnumber(l.desc, sent.names[i]);
        is_sent[l.positions[i] - 1] = true;
        Oid function = InvalidOid;
        getTypeInputInfo(TupleDescAttr(l.desc, l.positions[i] - 1)->atttypid, &function, &l.ioparams[i]);
        fmgr_info(function, &l.input[i]);
    }
    l.estate = CreateExecutorState();
    l.defaults = static_cast<ExprState**>(palloc0(sizeof(ExprState*) * (n + 1)));
    for (int a = 0; a < n; ++a) {
        const Form_pg_attribute attribute = TupleDescAttr(l.desc, a);
        if (is_sent[a] || attribute->attisdropped || attribute->attgenerated) continue;
        if (Expr* expression = reinterpret_cast<Expr*>(build_column_default(rel, attribute->attnum))) {
            l.defaults[a] = ExecPrepareExpr(expression, l.estate);
            l.defaulted = true;
        }
    }
    l.values = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
    l.nulls = static_cast<bool*>(palloc(sizeof(bool) * (n + 1)));
    l.per_row = AllocSetContextCreate(CurrentMemoryContext, "pg_causal relay row", ALLOCSET_DEFAULT_SIZES);
    return l;
}

// Stores the row in `row`'s first l.count columns, adding its digest to `news`.
void load_row(Loader& l, TupleTableSlot* row, uint64* news) {
    MemoryContext outside = MemoryContextSwitchTo(l.per_row);
    const int n = l.desc->natts;
    const OwnerScope scope = l.defaulted ? enter_owner_scope(RelationGetRelid(l.rel)) : OwnerScope{};
    for (int a = 0; a < n; ++a) {
        l.values[a] = Datum(0);
        l.nulls[a] = true;
        if (l.defaults[a] == nullptr) continue;
        const Form_pg_attribute attribute = TupleDescAttr(l.desc, a);
        l.values[a] = ExecEvalExprSwitchContext(l.defaults[a], GetPerTupleExprContext(l.estate), &l.nulls[a]);
        if (!l.nulls[a]) l.values[a] = datumCopy(l.values[a], attribute->attbyval, attribute->attlen);
        ResetPerTupleExprContext(l.estate);
    }
    if (l.defaulted) leave_owner_scope(scope);
    for (int i = 0; i < l.count; ++i) {
        bool isnull = false;
        const Datum sent_text = slot_getattr(row, i + 1, &isnull);
        const Form_pg_attribute attribute = TupleDescAttr(l.desc, l.positions[i] - 1);
        char* value = isnull ? nullptr : TextDatumGetCString(sent_text);
        if (value != nullptr)
            *news += hash_bytes_extended(reinterpret_cast<const unsigned char*>(value),
                                         static_cast<int>(std::strlen(value)), i);
        l.values[l.positions[i] - 1] = InputFunctionCall(&l.input[i], value, l.ioparams[i], attribute->atttypmod);
        l.nulls[l.positions[i] - 1] = isnull;
    }
    store_insert(l.rel, heap_form_tuple(l.desc, l.values, l.nulls));
    MemoryContextSwitchTo(outside);
    MemoryContextReset(l.per_row);
}

void close_loader(Loader& l) {
    MemoryContextDelete(l.per_row);
    FreeExecutorState(l.estate);
}

// A column `source`'s table has and this region's lacks: an error of the
// link from `peer`, which stops the table's pull, as it stops the apply
// worker.
void refuse_lacked_column(const Table& table, const Peer& source, const Peer& peer, const char* column) {
    char* message = psprintf("pg_causal relay: %s of region \"%s\" has a column \"%s\" that this region's "
                             "lacks; region \"%s\"'s rows are not pulled through it",
                             table.name, source.region, column, peer.region);
    ereport(WARNING, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("%s", message)));
    record_relay_error(peer.region, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, message,
                       psprintf("%s.%s", table.name, column));
}

// Pulls `table`'s rows that carry `peer`'s stamps and stores each as the
// apply worker would, adding their digest to `news`. The columns are the
// ones both regions have; one the source lacks gets its default here, as
// the apply worker would give it. One this region lacks stops the table's
// pull, as it stops the apply worker: an error of the link from `peer`
// (causal.link_errors(), causalctl status). False when the table was not
// pulled: the peer's heartbeat must then not be stored, or the stable point
// would pass rows that are not here.
//
// Along the stamps (`along_stamps`: the source has the index), it starts
// past `key`, spends at most `*budget` pages, and leaves in `key` the last
// row it stored: Stopped when the budget ran out with rows maybe left.
enum class TablePull { Done, Stopped, Refused };
TablePull pull_table(const Table& table, const Peer& source, Peer& peer, PullCount& counted, bool along_stamps,
                     Key& key, int* budget, const char* live_ids = nullptr) {
    const MemoryContext pull_context = CurrentMemoryContext;
    WalRcvExecResult* theirs = remote_columns(table, source);
    if (theirs == nullptr) {
        record_relay_error(peer.region, ERRCODE_WRONG_OBJECT_TYPE,
                           psprintf("pg_causal relay: %s of region \"%s\" is no plain table with pg_causal's stamp "
                                    "columns; its rows are not pulled from there",
                                    table.name, source.region),
                           table.name);
        return TablePull::Refused;
    }
    const SentColumns sent = sent_columns(theirs);
    Relation rel = table_open(table.relid, RowExclusiveLock);
    if (const char* column = lacked_here(rel, sent)) {
        refuse_lacked_column(table, source, peer, column);
        table_close(rel, RowExclusiveLock);
        return TablePull::Refused;
    }
    if (sent.count == 0) {
        table_close(rel, RowExclusiveLock);
        return TablePull::Done;
    }
    // Along the stamps, two more: the row's key.
    const int fetched = along_stamps ? sent.count + 2 : sent.count;
    Oid* types = static_cast<Oid*>(palloc(sizeof(Oid) * fetched));
    for (int i = 0; i < fetched; ++i) types[i] = TEXTOID;
    // Page by page through a cursor of the pull's snapshot there.
    (void)remote(psprintf("DECLARE causal_pull NO SCROLL CURSOR FOR %s",
                          rows_query(table, sent.select_list, peer, along_stamps, key, live_ids)),
                 0, nullptr, WALRCV_OK_COMMAND);
    const char* fetch = psprintf("FETCH FORWARD %d FROM causal_pull", kPageRows);
    Loader loader = open_loader(rel, sent);
    TablePull outcome = TablePull::Done;
    for (;;) {
        WalRcvExecResult* rows = remote(fetch, fetched, types, WALRCV_OK_TUPLES);
        const int64 page_rows = tuplestore_tuple_count(rows->tuplestore);
        counted.pages += 1;
        counted.rows += page_rows;
        TupleTableSlot* row = MakeSingleTupleTableSlot(rows->tupledesc, &TTSOpsMinimalTuple);
        while (tuplestore_gettupleslot(rows->tuplestore, true, false, row)) {
            load_row(loader, row, &peer.news);
            if (along_stamps) {
                bool isnull = false;
                const Datum stamp = slot_getattr(row, sent.count + 1, &isnull);
                const Datum msg_id = slot_getattr(row, sent.count + 2, &isnull);
                MemoryContext before = MemoryContextSwitchTo(pull_context);
                if (key.stamp) pfree(key.stamp);
                if (key.msg_id) pfree(key.msg_id);
                key.stamp = TextDatumGetCString(stamp);
                key.msg_id = TextDatumGetCString(msg_id);
                MemoryContextSwitchTo(before);
            }
        }
        ExecDropSingleTupleTableSlot(row);
        walrcv_clear_result(rows);
        if (page_rows < kPageRows) break;
        if (budget != nullptr && --*budget <= 0) {
            outcome = TablePull::Stopped;
            break;
        }
    }
    (void)remote("CLOSE causal_pull", 0, nullptr, WALRCV_OK_COMMAND);
    close_loader(loader);
    table_close(rel, RowExclusiveLock);
    return outcome;
}

// The heartbeat of `peer` that `source` holds, as text: beat, stable
// (nullptr where NULL or none).
struct Beat {
    char* beat = nullptr;
    char* stable = nullptr;
};
Beat remote_beat(const Peer& peer) {
    const Oid types[2] = {TEXTOID, TEXTOID};
    WalRcvExecResult* found = remote(psprintf("SELECT h.beat::text, h.stable::text FROM causal.heartbeats h"
                                              " WHERE h.region OPERATOR(pg_catalog.=) %s",
                                              quote_literal_cstr(peer.region)),
                                     2, types, WALRCV_OK_TUPLES);
    Beat beat;
    TupleTableSlot* slot = MakeSingleTupleTableSlot(found->tupledesc, &TTSOpsMinimalTuple);
    if (tuplestore_gettupleslot(found->tuplestore, true, false, slot)) {
        bool isnull = false;
        Datum value = slot_getattr(slot, 1, &isnull);
        if (!isnull) beat.beat = TextDatumGetCString(value);
        value = slot_getattr(slot, 2, &isnull);
        if (!isnull) beat.stable = TextDatumGetCString(value);
    }
    ExecDropSingleTupleTableSlot(slot);
    walrcv_clear_result(found);
    return beat;
}

// Where the last pull of `peer` through `source` stopped, if it did
// (causal.relay_progress): its heartbeat, table and key. A pull through
// another source read another snapshot: it starts over.
struct Progress {
    bool found = false;
    Beat beat;
    Oid table = InvalidOid;
    Key key;
};
Progress read_progress(const Peer& peer, const Peer& source) {
    const Oid types[2] = {TEXTOID, TEXTOID};
    const Datum args[2] = {CStringGetTextDatum(peer.region), CStringGetTextDatum(source.region)};
    spi_run("SELECT p.beat::text, p.stable::text, p.message_table, p.after_stamp::text, p.after_msg_id::text"
            "  FROM causal.relay_progress p WHERE p.peer OPERATOR(pg_catalog.=) $1 AND p.source OPERATOR(pg_catalog.=) $2",
            SPI_OK_SELECT, {2, types, args}, true);
    Progress progress;
    if (SPI_processed == 0) return progress;
    progress.found = true;
    progress.beat = Beat{spi_text(0, 1), spi_text(0, 2)};
    progress.table = spi_oid(0, 3);
    progress.key = Key{spi_text(0, 4), spi_text(0, 5)};
    return progress;
}

void write_progress(const Peer& peer, const Peer& source, const Beat& beat, Oid table, const Key& key) {
    const Oid types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, OIDOID, TEXTOID, TEXTOID};
    const Datum args[7] = {CStringGetTextDatum(peer.region), CStringGetTextDatum(source.region),
                           beat.beat ? CStringGetTextDatum(beat.beat) : Datum(0),
                           beat.stable ? CStringGetTextDatum(beat.stable) : Datum(0), ObjectIdGetDatum(table),
                           key.stamp ? CStringGetTextDatum(key.stamp) : Datum(0),
                           key.msg_id ? CStringGetTextDatum(key.msg_id) : Datum(0)};
    const char nulls[8] = {' ', ' ', beat.beat ? ' ' : 'n', beat.stable ? ' ' : 'n', ' ',
                           key.stamp ? ' ' : 'n', key.msg_id ? ' ' : 'n', '\0'};
    spi_run("INSERT INTO causal.relay_progress AS p (peer, source, beat, stable, message_table, after_stamp, after_msg_id)"
            " VALUES ($1, $2, $3::bigint, $4::causal.hlc, $5, $6::causal.hlc, $7::pg_catalog.uuid)"
            " ON CONFLICT (peer) DO UPDATE SET source = EXCLUDED.source, beat = EXCLUDED.beat, stable = EXCLUDED.stable,"
            "   message_table = EXCLUDED.message_table, after_stamp = EXCLUDED.after_stamp,"
            "   after_msg_id = EXCLUDED.after_msg_id",
            SPI_OK_INSERT, {7, types, args, nulls});
}

// A pull asked for is done (or stopped on a table it cannot pull: asking
// again would not help; the link's error says why).
void forget_request(const Peer& peer) {
    const Oid type = TEXTOID;
    const Datum arg = CStringGetTextDatum(peer.region);
    spi_run("DELETE FROM causal.pull_requests r WHERE r.peer OPERATOR(pg_catalog.=) $1", SPI_OK_DELETE, {1, &type, &arg});
}

void forget_progress(const Peer& peer) {
    const Oid type = TEXTOID;
    const Datum arg = CStringGetTextDatum(peer.region);
    spi_run("DELETE FROM causal.relay_progress p WHERE p.peer OPERATOR(pg_catalog.=) $1", SPI_OK_DELETE,
            {1, &type, &arg});
}

// Pulls what `source` holds of `peer` (its rows, then its heartbeat) into
// this transaction. Along the stamps, a pull stores at most kPagesPerPull
// pages, then where it stopped; the next goes on from there in a new
// snapshot, and the heartbeat stored at the end is the one of the first:
// every row that snapshot held is here by then, those below the key in the
// pulls before, the others in the later snapshot (a key only grows, and no
// row goes away: a deletion leaves a tombstone).
void pull_peer(const Peer& source, Peer& peer, const View& view, bool source_has_index, PullCount& counted) {
    // Without a stable point for the peer, every row of its is pulled: by a scan.
    const bool along_stamps = source_has_index && peer.stable != nullptr;
    Progress progress = along_stamps ? read_progress(peer, source) : Progress{};
    // The heartbeat first, the rows after, in one snapshot: the rows are
    // then every row below its stable point, and maybe more.
    const Beat beat = progress.found ? progress.beat : remote_beat(peer);
    int budget = relay::kPagesPerPull;
    bool whole = true, stopped = false;
    for (int t = 0; t < view.table_count && !stopped; ++t) {
        const Table& table = view.tables[t];
        if (progress.found && table.relid < progress.table) continue;  // done in an earlier pull
        Key key = progress.found && table.relid == progress.table ? progress.key : Key{};
        switch (pull_table(table, source, peer, counted, along_stamps, key, along_stamps ? &budget : nullptr)) {
            case TablePull::Done:
                break;
            case TablePull::Refused:
                whole = false;
                break;
            case TablePull::Stopped:
                write_progress(peer, source, beat, table.relid, key);
                stopped = true;
                break;
        }
    }
    if (stopped) {
        peer.unfinished = true;
        return;
    }
    // Done, or refused: from the start next time (a refused table stays
    // refused until the regions' tables agree again).
    if (progress.found || along_stamps) forget_progress(peer);
    if (!whole || beat.beat == nullptr) return;
    peer.news += hash_bytes_extended(reinterpret_cast<const unsigned char*>(beat.beat),
                                     static_cast<int>(std::strlen(beat.beat)), 1);
    const Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
    const Datum args[3] = {CStringGetTextDatum(peer.region), CStringGetTextDatum(beat.beat),
                           beat.stable ? CStringGetTextDatum(beat.stable) : Datum(0)};
    const char nulls[4] = {' ', ' ', beat.stable ? ' ' : 'n', '\0'};
    spi_run("INSERT INTO causal.heartbeats (region, beat, stable) VALUES ($1, $2::bigint, $3::causal.hlc)",
            SPI_OK_INSERT, {3, types, args, nulls});
}

// Messages whose body a fenced region's deletion erased here (the deleting
// region's own, or where the tombstone came before its fence): the live
// copies `source` holds of them, stored as the apply worker would, so that
// the copy rule brings the body back (src/core/copies.hpp) and settles
// their record. At most a page of them per table and round.
void pull_bodies(const Peer& source, const View& view, PullCount& counted) {
    Peer from = source;
    for (int t = 0; t < view.table_count; ++t) {
        const Table& table = view.tables[t];
        const Oid type = OIDOID;
        const Datum arg = ObjectIdGetDatum(table.relid);
        // Erased since (a DELETE in this active region, or a lift that made
        // the deletion count): nothing to bring back.
        spi_run(psprintf("UPDATE causal.fenced_deletions d SET state = 'erased' FROM ONLY %s m"
                         " WHERE d.message_table OPERATOR(pg_catalog.=) $1 AND d.state OPERATOR(pg_catalog.=) 'awaiting body'"
                         "   AND m.msg_id OPERATOR(pg_catalog.=) d.msg_id AND m.deleted_at IS NOT NULL"
                         "   AND NOT causal.is_fenced_deletion(m.written_by, m.deleted_at)",
                         table.name),
                SPI_OK_UPDATE, {1, &type, &arg});
        spi_run("SELECT '{' OPERATOR(pg_catalog.||) pg_catalog.string_agg(d.msg_id::pg_catalog.text, ',')"
                "       OPERATOR(pg_catalog.||) '}'"
                "  FROM (SELECT d.msg_id FROM causal.fenced_deletions d"
                "         WHERE d.message_table OPERATOR(pg_catalog.=) $1"
                "           AND d.state OPERATOR(pg_catalog.=) 'awaiting body'"
                "         ORDER BY d.noted_at LIMIT 1000) d",
                SPI_OK_SELECT, {1, &type, &arg}, true);
        char* ids = SPI_processed > 0 ? spi_text(0, 1) : nullptr;
        if (ids == nullptr) continue;
        Key key;
        (void)pull_table(table, source, from, counted, false, key, nullptr, ids);
    }
}

// Pulls from `source`, in one snapshot there and one transaction here, what
// it holds of every unheard peer: the rows, stored as the apply worker would,
// then the heartbeat (pull_peer).
void pull_from(const Peer& source, View& view, PullCount& counted) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "pg_causal relay: pulling");
    // Replica: the message tables' triggers take the apply path, and the
    // heartbeats' register keeps the newest beat.
    (void)set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
                            true, 0, false);
    char* error = nullptr;
    // Outside the transaction's memory: an error aborts the transaction
    // before the connection is closed.
    MemoryContext local = MemoryContextSwitchTo(TopMemoryContext);
    enable_timeout_after(static_cast<TimeoutId>(pull_timeout), kRemoteWaitMs);
    connection = walrcv_connect(source.conninfo, true, "pg_causal relay", &error);
    answered_in_time();
    MemoryContextSwitchTo(local);
    if (connection == nullptr)
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("pg_causal relay: cannot reach region \"%s\": %s", source.region, error)));
    (void)remote("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", 0, nullptr, WALRCV_OK_COMMAND);
    // Nobody's code runs there for this: a view by a message table's name
    // is refused (a peer without this setting is not pulled from), and so
    // is a table whose row-level security would apply to the link's login.
    (void)remote("SET LOCAL restrict_nonsystem_relation_kind = 'view, foreign-table'", 0, nullptr, WALRCV_OK_COMMAND);
    (void)remote("SET LOCAL row_security = off", 0, nullptr, WALRCV_OK_COMMAND);
    // Along the stamps only if the source has the index on every table:
    // else each table is read by a scan, and the pull is done in one go.
    bool along_stamps = true;
    for (int t = 0; t < view.table_count && along_stamps; ++t) along_stamps = remote_stamp_index(view.tables[t]);
    for (int i = 0; i < view.peer_count; ++i) {
        Peer& peer = view.peers[i];
        const bool asked = peer.requested && &peer == &source;
        if (!peer.unheard && !asked) continue;
        // Asked for: since the point taken with the request, before the
        // link's new stream moved this region's point on.
        char* stable = peer.stable;
        if (asked) peer.stable = peer.requested_since;
        pull_peer(source, peer, view, along_stamps, counted);
        peer.stable = stable;
        if (asked && !peer.unfinished) forget_request(peer);
    }
    if (source.bodies) pull_bodies(source, view, counted);
    (void)remote("COMMIT", 0, nullptr, WALRCV_OK_COMMAND);
    close_connection();
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
}

// Recent first. While a peer's backlog arrives here in its stream, in commit
// order, a message it writes now would wait behind all of it. So the relay
// follows the peer itself meanwhile, over a connection of its own kept open
// across rounds: every kTailPollMs one query, for the rows the peer stamped
// since a point, along its index of latest stamps, at most a page per table,
// stored as the apply worker would. The stream brings them again later and
// the apply path drops them. No heartbeat is stored: the stable point stays
// where the stream has brought it, below the backlog.
//
// Where each query starts is relay::TailCursor's (src/core/relay.hpp): at
// the peer's stable point the answer before carried, so that no row is
// missed whatever order the peer's transactions commit in. The first starts
// when this server did (a backlog arises only behind what it held then), or
// at most kTailLookBackMs ago, less the clock offset the mesh allows (not
// more: a query starting further back pages through the backlog's end
// first, which the stream brings anyway).
constexpr long kTailPollMs = 10;
constexpr int64 kTailLookBackMs = 60 * 1000;
// The view a tail follows by (peers, tables) is read again this often while
// nothing else is to do.
constexpr int64 kTailViewMs = 1000;

struct Tail {
    MemoryContext memory;  // everything below; gone with the tail
    char* region;
    int node_id;
    char* conninfo;
    Table* tables;
    int table_count;
    WalReceiverConn* conn;    // opened at the first poll, kept
    SentColumns* columns;     // per table, read when the connection opened
    relay::TailCursor<Hlc>* cursor;
    int64 behind_ms;          // when the peer's backlog was last seen arriving
};
Tail tails[kMaxPeers];
int tail_count = 0;
int64 tails_viewed_ms = 0;
long relay_nap_ms = kNapMs;

int find_tail(const char* region) {
    for (int i = 0; i < tail_count; ++i)
        if (std::strcmp(tails[i].region, region) == 0) return i;
    return -1;
}

void stop_tail(int i) {
    if (tails[i].conn != nullptr) walrcv_disconnect(tails[i].conn);
    MemoryContextDelete(tails[i].memory);
    tails[i] = tails[--tail_count];
}

void stop_tails() {
    while (tail_count > 0) stop_tail(tail_count - 1);
}

void start_tail(const Peer& peer, const View& view, int64 started_ms) {
    if (tail_count == kMaxPeers || peer.conninfo == nullptr) return;
    // Built whole before it counts: an allocation that fails leaves no half tail.
    Tail t{};
    t.memory = AllocSetContextCreate(TopMemoryContext, "pg_causal relay tail", ALLOCSET_SMALL_SIZES);
    MemoryContext outside = MemoryContextSwitchTo(t.memory);
    t.region = pstrdup(peer.region);
    t.node_id = peer.node_id;
    t.conninfo = pstrdup(peer.conninfo);
    t.table_count = view.table_count;
    t.tables = static_cast<Table*>(palloc0(sizeof(Table) * (view.table_count + 1)));
    for (int i = 0; i < view.table_count; ++i) t.tables[i] = Table{view.tables[i].relid, pstrdup(view.tables[i].name)};
    // A peer whose clock is behind this one's stamps what it writes after
    // the start up to the allowed offset below it.
    static_assert(std::is_trivially_destructible_v<relay::TailCursor<Hlc>>, "it lives in a context");
    const int64 start_ms = std::max(started_ms, now_ms() - kTailLookBackMs) - max_clock_offset_ms;
    t.cursor = new (palloc(sizeof(relay::TailCursor<Hlc>)))
        relay::TailCursor<Hlc>(Hlc::from_parts(std::max<int64>(start_ms, 0), 0, 0));
    t.behind_ms = now_ms();
    MemoryContextSwitchTo(outside);
    tails[tail_count++] = t;
}

// The tails go on while a peer's backlog arrives, and kTailLingerMs after.
void keep_tails() {
    const int64 now = now_ms();
    for (int i = tail_count - 1; i >= 0; --i) {
        const bool behind = replaying_backlog_of(tails[i].region);
        if (behind) tails[i].behind_ms = now;
        if (!relay::keep_following(behind, tails[i].behind_ms, now)) stop_tail(i);
    }
}

// The tails this round's view asks for: a peer whose backlog arrives here.
void follow(const View& view, int64 started_ms) {
    for (int i = 0; i < view.peer_count; ++i)
        if (find_tail(view.peers[i].region) < 0 && replaying_backlog_of(view.peers[i].region))
            start_tail(view.peers[i], view, started_ms);
    tails_viewed_ms = now_ms();
}

Hlc parse_hlc(const char* text) {
    return cpp_guard([&] { return causal::parse(text); });
}

// Opens the tail's connection as a pull's (nobody's code runs there for
// it), and reads each table's columns there once. False if the peer cannot
// be followed so (no index of latest stamps, or no causal.local_stable(),
// as before 0.4.0): the tail then asks it nothing, and its stream brings
// everything.
bool open_tail(Tail& t) {
    char* error = nullptr;
    MemoryContext outside = MemoryContextSwitchTo(t.memory);
    enable_timeout_after(static_cast<TimeoutId>(pull_timeout), kRemoteWaitMs);
    t.conn = walrcv_connect(t.conninfo, true, "pg_causal relay", &error);
    answered_in_time();
    MemoryContextSwitchTo(outside);
    if (t.conn == nullptr)
        ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
                        errmsg("pg_causal relay: cannot reach region \"%s\": %s", t.region, error)));
    connection = t.conn;
    (void)remote("SET restrict_nonsystem_relation_kind = 'view, foreign-table'", 0, nullptr, WALRCV_OK_COMMAND);
    (void)remote("SET row_security = off", 0, nullptr, WALRCV_OK_COMMAND);
    bool fit = remote_bool("SELECT pg_catalog.to_regprocedure('causal.local_stable()') IS NOT NULL");
    (void)remote("BEGIN READ ONLY", 0, nullptr, WALRCV_OK_COMMAND);
    auto* columns = static_cast<SentColumns*>(MemoryContextAllocZero(t.memory, sizeof(SentColumns) * (t.table_count + 1)));
    for (int i = 0; i < t.table_count && fit; ++i) {
        fit = remote_stamp_index(t.tables[i]);
        WalRcvExecResult* theirs = fit ? remote_columns(t.tables[i], Peer{t.region}) : nullptr;
        fit = theirs != nullptr;
        if (!fit) break;
        MemoryContext before = MemoryContextSwitchTo(t.memory);
        columns[i] = sent_columns(theirs);
        MemoryContextSwitchTo(before);
        walrcv_clear_result(theirs);
    }
    (void)remote("COMMIT", 0, nullptr, WALRCV_OK_COMMAND);
    connection = nullptr;
    t.columns = columns;
    return fit;
}

// One query per table: the rows the peer stamped since t.since, and, in
// every answer row (one with NULLs when there are none), the peer's stable
// point, read after the query's snapshot.
char* tail_query(const Tail& t, int table) {
    const char* since = hlc_text(t.cursor->since);
    return psprintf("SELECT %s, m.causal_tail_key::pg_catalog.text, s.stable::pg_catalog.text"
                    "  FROM (SELECT causal.local_stable() AS stable) s"
                    "  LEFT JOIN LATERAL (SELECT m.*, causal.latest_stamp(m.hlc, m.deleted_at, m.copies) AS causal_tail_key"
                    "                       FROM ONLY %s m"
                    "                      WHERE causal.latest_stamp(m.hlc, m.deleted_at, m.copies)"
                    "                            OPERATOR(pg_catalog.>=) %s::causal.hlc AND (%s)"
                    "                      ORDER BY causal_tail_key, m.msg_id LIMIT %d) m ON true",
                    t.columns[table].select_list, t.tables[table].name, quote_literal_cstr(since),
                    stamped_by(t.node_id, since), kPageRows);
}

// One poll of the peer, in a transaction here: each table's new rows, stored.
void poll_tail(Tail& t, PullCount& counted) {
    if (t.conn != nullptr && t.table_count == 0) return;  // not followable: asks nothing
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "pg_causal relay: following a peer whose backlog arrives");
    (void)set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
                            true, 0, false);
    if (t.conn == nullptr && !open_tail(t)) {
        ereport(LOG, (errmsg("pg_causal relay: region \"%s\" cannot be followed while its backlog arrives", t.region),
                      errdetail("It lacks causal.local_stable() or an index of latest stamps on a message table.")));
        t.table_count = 0;
    }
    std::optional<Hlc> stable;    // the smallest stable point an answer carried
    std::optional<Hlc> page_end;  // the last key of a full page
    Peer peer{t.region};
    peer.node_id = t.node_id;
    connection = t.conn;
    for (int i = 0; i < t.table_count; ++i) {
        const SentColumns& sent = t.columns[i];
        const int fetched = sent.count + 2;
        Oid* types = static_cast<Oid*>(palloc(sizeof(Oid) * fetched));
        for (int c = 0; c < fetched; ++c) types[c] = TEXTOID;
        WalRcvExecResult* rows = remote(tail_query(t, i), fetched, types, WALRCV_OK_TUPLES);
        Relation rel = table_open(t.tables[i].relid, RowExclusiveLock);
        if (const char* column = lacked_here(rel, sent)) {
            // Said once: the tail stops (its stream stops on it too).
            refuse_lacked_column(t.tables[i], peer, peer, column);
            table_close(rel, RowExclusiveLock);
            walrcv_clear_result(rows);
            t.table_count = 0;
            break;
        }
        Loader loader = open_loader(rel, sent);
        int64 stored = 0;
        TupleTableSlot* row = MakeSingleTupleTableSlot(rows->tupledesc, &TTSOpsMinimalTuple);
        while (tuplestore_gettupleslot(rows->tuplestore, true, false, row)) {
            bool isnull = false;
            const Datum stable_text = slot_getattr(row, sent.count + 2, &isnull);
            if (!isnull) {
                const Hlc read = parse_hlc(TextDatumGetCString(stable_text));
                if (!stable || read < *stable) stable = read;
            }
            const Datum key = slot_getattr(row, sent.count + 1, &isnull);
            if (isnull) continue;  // none: the stable point alone
            load_row(loader, row, &peer.news);
            ++stored;
            if (stored == kPageRows && (!page_end || parse_hlc(TextDatumGetCString(key)) < *page_end))
                page_end = parse_hlc(TextDatumGetCString(key));
        }
        ExecDropSingleTupleTableSlot(row);
        walrcv_clear_result(rows);
        close_loader(loader);
        table_close(rel, RowExclusiveLock);
        counted.rows += stored;
        counted.pages += 1;
    }
    connection = nullptr;
    if (stable) t.cursor->after_answer(*stable, page_end);
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
}

// Runs `step` (a pull from one source, a poll of one tail) so that its
// failure costs it alone: as the worker's own error block (bgworker.hpp),
// the error is reported and the transaction aborted, which ends the SPI
// connection too; `drop()` lets go of the connection to the peer. False if
// it failed.
template <typename Step, typename Drop>
pg_noinline bool contained(Step step, Drop drop, MemoryContext after_error) {
    static_assert(std::is_trivially_destructible_v<Step> && std::is_trivially_destructible_v<Drop>,
                  "an error longjmps past them");
    bool failed = false;
    PG_TRY();
    {
        step();
    }
    PG_CATCH();
    {
        failed = true;
        HOLD_INTERRUPTS();
        MemoryContextSwitchTo(after_error);
        EmitErrorReport();
        FlushErrorState();
        drop();
        AbortCurrentTransaction();
        RESUME_INTERRUPTS();
    }
    PG_END_TRY();
    return !failed;
}

// Every tail, once; a tail that fails is closed (the next view opens it again).
void poll_tails() {
    const MemoryContext memory = CurrentMemoryContext;
    for (int i = tail_count - 1; i >= 0; --i) {
        PullCount counted;
        Tail& t = tails[i];
        // The tail's connection goes with the tail (stop_tail).
        const bool done = contained([&] { poll_tail(t, counted); },
                                    [] {
                                        connection = nullptr;
                                        close_connection();
                                    },
                                    memory);
        if (!done) stop_tail(i);
        count_rows(counted);
    }
}

// Tombstones this region holds whose deletion a fence that landed or
// arrived here makes a fenced region's: noted in causal.fenced_deletions as
// awaiting their body. Along the index of latest stamps, from the fence on
// (a tombstone's latest stamp is at least its deletion's), in one
// transaction with the fence's scan row, which goes.
void scan_fences(const View& view) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "pg_causal relay: looking for fenced deletions");
    spi_run("SELECT s.region, s.epoch::pg_catalog.text, s.since::pg_catalog.text FROM causal.fence_scans s",
            SPI_OK_SELECT, {}, true);
    const uint64 scans = SPI_processed;
    auto* fences = static_cast<char**>(palloc(sizeof(char*) * (3 * scans + 1)));
    for (uint64 i = 0; i < scans; ++i)
        for (int c = 0; c < 3; ++c) fences[3 * i + c] = spi_text(i, c + 1);
    for (uint64 i = 0; i < scans; ++i) {
        const Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
        const Datum args[3] = {CStringGetTextDatum(fences[3 * i]), CStringGetTextDatum(fences[3 * i + 2]),
                               CStringGetTextDatum(fences[3 * i + 1])};
        for (int t = 0; t < view.table_count; ++t) {
            // Only over pg_causal's own column types: a column of the owner's
            // type would reach the comparisons below through a cast of theirs.
            const Oid relid_type = OIDOID;
            const Datum relid = ObjectIdGetDatum(view.tables[t].relid);
            spi_run("SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 4 FROM pg_catalog.pg_attribute a"
                    " WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND NOT a.attisdropped"
                    "   AND ((a.attname OPERATOR(pg_catalog.=) 'written_by' AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype)"
                    "     OR (a.attname OPERATOR(pg_catalog.=) ANY ('{hlc,deleted_at}') AND a.atttypid OPERATOR(pg_catalog.=) 'causal.hlc'::pg_catalog.regtype)"
                    "     OR (a.attname OPERATOR(pg_catalog.=) 'copies' AND a.atttypid OPERATOR(pg_catalog.=) 'causal.copy[]'::pg_catalog.regtype))",
                    SPI_OK_SELECT, {1, &relid_type, &relid}, true);
            if (std::strcmp(spi_text(0, 1), "t") != 0) continue;
            spi_run(psprintf("INSERT INTO causal.fenced_deletions (message_table, msg_id, written_by, deleted_at, state)"
                             " SELECT %u::pg_catalog.oid, m.msg_id, m.written_by, m.deleted_at, 'awaiting body' FROM ONLY %s m"
                             "  WHERE causal.latest_stamp(m.hlc, m.deleted_at, m.copies) OPERATOR(pg_catalog.>) $2::causal.hlc"
                             "    AND m.written_by OPERATOR(pg_catalog.=) $1"
                             "    AND m.deleted_at OPERATOR(pg_catalog.>) $2::causal.hlc"
                             "    AND causal.is_fenced_deletion(m.written_by, m.deleted_at)"
                             " ON CONFLICT (message_table, msg_id) DO NOTHING",
                             view.tables[t].relid, view.tables[t].name),
                    SPI_OK_INSERT, {2, types, args});
        }
        spi_run("DELETE FROM causal.fence_scans s WHERE s.region OPERATOR(pg_catalog.=) $1"
                "   AND s.since OPERATOR(pg_catalog.=) $2::causal.hlc AND s.epoch OPERATOR(pg_catalog.=) $3::pg_catalog.int8",
                SPI_OK_DELETE, {3, types, args});
    }
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
}

// How often the peers are asked for the bodies fenced deletions erased
// here: a message no region holds alive any more (every region took the
// deletion before its fence) is asked for again, but not every round.
constexpr int64 kBodiesEveryMs = 5000;
bool bodies_pending = false;
int64 bodies_asked_ms = 0;

void relay_once(MemoryContext round_memory, int64 started_ms) {
    const char* region = region_setting ? region_setting : "";
    const int64 now = now_ms();
    const int64 relay_after_ms = liveness_timing().relay_after_ms;
    if (relay_after_ms <= 0 || region[0] == '\0') {
        stop_tails();
        return;
    }
    // A backlog arriving from a peer: follow it every kTailPollMs meanwhile.
    keep_tails();
    const bool backlog = replaying_backlog_of(nullptr) || tail_count > 0;
    relay_nap_ms = backlog ? kTailPollMs : kNapMs;
    // The streams get their chance first after a start.
    const bool settling = now - started_ms < relay_after_ms;
    // Every peer heard and no pull asked for: nothing to read, and a peer
    // that goes unheard later is pulled from at once. (The count is read
    // before the view: a request committed after that moves it again.)
    const uint64 requests = pg_atomic_read_u64(&shared_relay_stats->requests_committed);
    const bool bodies_due = bodies_pending && now - bodies_asked_ms >= kBodiesEveryMs;
    const bool other_work = !settling && (some_peer_unheard(relay_after_ms) || requests != requests_seen ||
                                          requests_pending || bodies_due);
    if (!other_work && !backlog) {
        state_count = 0;
        return;
    }
    // The view (and with it a tail that failed, again) at most every
    // kTailViewMs; other work at the pace it has without tails, unless woken.
    const bool woken_now = requests != requests_seen;
    if (backlog && now - tails_viewed_ms < (other_work ? kNapMs : kTailViewMs) && !woken_now) {
        poll_tails();
        return;
    }
    MemoryContextReset(round_memory);
    View view = {};
    if (!read_view(region, view, round_memory)) {
        stop_tails();
        return;
    }
    if (backlog) follow(view, started_ms);
    if (settling) {
        poll_tails();
        return;
    }
    const bool woken = requests != requests_seen;
    requests_seen = requests;
    requests_pending = false;
    if (view.fence_scans) {
        // Its failure costs it alone (logged; the scan row stays for a later round).
        (void)contained([&] { scan_fences(view); }, [] {}, round_memory);
        view.awaiting_bodies = true;  // maybe: the next round reads it
    }
    bodies_pending = view.awaiting_bodies;
    const bool ask_bodies = view.awaiting_bodies && (woken || bodies_due || view.fence_scans);
    if (ask_bodies) bodies_asked_ms = now;
    auto* seen = static_cast<relay::PeerView*>(MemoryContextAlloc(round_memory, sizeof(relay::PeerView) * (view.peer_count + 1)));
    auto* backoffs = static_cast<relay::Backoff*>(MemoryContextAlloc(round_memory, sizeof(relay::Backoff) * (view.peer_count + 1)));
    auto* plan = static_cast<relay::Decision*>(MemoryContextAlloc(round_memory, sizeof(relay::Decision) * (view.peer_count + 1)));
    for (int i = 0; i < view.peer_count; ++i) {
        Peer& peer = view.peers[i];
        const int64 heard = peer_heard_ms(peer.region);
        peer.seen.heard = fencing::heard_within(heard > 0 ? std::optional<int64_t>(now - heard) : std::nullopt,
                                                relay_after_ms);
        peer.seen.known = heard >= 0;
        seen[i] = peer.seen;
        backoffs[i] = state_of(peer.region).backoff;
    }
    relay::plan_round(seen, backoffs, plan, view.peer_count, now);
    bool requested = false;  // a peer asked for that this region can reach
    bool bodies = false;     // peers asked for bodies fenced deletions erased here
    for (int i = 0; i < view.peer_count; ++i) {
        state_of(view.peers[i].region).backoff = backoffs[i];
        view.peers[i].unheard = plan[i].target;
        requests_pending = requests_pending || view.peers[i].requested;
        // Asked for, it is pulled from as soon as its link is there, heard or
        // not: a region restored from a dump holds no heartbeat of it, so the
        // stream's updates of its heartbeat find no row here until the pull
        // stores one.
        view.peers[i].requested = view.peers[i].requested && view.peers[i].seen.has_connection;
        requested = requested || view.peers[i].requested;
        // Bodies from every peer this region hears: whichever holds them alive.
        view.peers[i].bodies = ask_bodies && view.peers[i].seen.heard && view.peers[i].seen.has_connection;
        bodies = bodies || view.peers[i].bodies;
    }
    const bool worth = relay::worth_pulling(plan, view.peer_count);
    if (!worth) {
        // Nobody to pull through: the targets wait as after a pull that
        // brought nothing.
        for (int i = 0; i < view.peer_count; ++i)
            if (plan[i].target) relay::after_pull(state_of(view.peers[i].region).backoff, 0, now, relay_after_ms);
        if (!requested && !bodies) {
            poll_tails();
            return;
        }
    }
    MemoryContext outside = MemoryContextSwitchTo(round_memory);
    for (int s = 0; s < view.peer_count; ++s) {
        if (!(worth && plan[s].source) && !view.peers[s].requested && !view.peers[s].bodies) continue;
        const Peer& source = view.peers[s];
        // A source that fails costs its own pull, not the others'. (What the
        // pull counts is in the round's memory: a local the try block
        // changed is indeterminate after the jump.)
        auto* counted = static_cast<PullCount*>(palloc0(sizeof(PullCount)));
        const TimestampTz started = GetCurrentTimestamp();
        const bool failed = !contained([&] { pull_from(source, view, *counted); }, [] { close_connection(); }, round_memory);
        count_pull(*counted, failed, started);
    }
    MemoryContextSwitchTo(outside);
    for (int i = 0; i < view.peer_count; ++i) {
        const Peer& peer = view.peers[i];
        if (!peer.unheard) continue;
        relay::after_pull(state_of(peer.region).backoff, peer.news, now, relay_after_ms, peer.unfinished);
    }
    poll_tails();
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

void relay_request_shmem() { RequestAddinShmemSpace(MAXALIGN(sizeof(RelayStats))); }

void relay_startup_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared_relay_stats = static_cast<RelayStats*>(ShmemInitStruct("pg_causal relay stats", sizeof(RelayStats), &found));
    if (!found) {
        std::memset(static_cast<void*>(shared_relay_stats), 0, sizeof(RelayStats));
        SpinLockInit(&shared_relay_stats->mutex);
        pg_atomic_init_u64(&shared_relay_stats->requests_committed, 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

namespace {

BackgroundWorkerHandle* relay_handle = nullptr;
int64 relay_launched_ms = 0;
constexpr int64 kRelaunchMs = 5000;

}  // namespace

bool relay_supervision_due() {
    if (liveness_timing().relay_after_ms <= 0) return false;
    if (relay_handle != nullptr) {
        pid_t pid = 0;
        if (GetBackgroundWorkerPid(relay_handle, &pid) != BGWH_STOPPED) return false;
        pfree(relay_handle);
        relay_handle = nullptr;
    }
    return now_ms() - relay_launched_ms >= kRelaunchMs;
}

void relay_supervise() {
    if (!relay_supervision_due()) return;
    relay_launched_ms = now_ms();
    const Oid role = replication_role();
    if (!OidIsValid(role)) return;
    // One relay per database: one that a liveness worker before this one
    // started goes on.
    spi_run("SELECT 1 FROM pg_catalog.pg_stat_activity a"
            " WHERE a.backend_type OPERATOR(pg_catalog.=) 'pg_causal relay'"
            "   AND a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()",
            SPI_OK_SELECT);
    if (SPI_processed > 0) return;
    BackgroundWorker worker = {};
    snprintf(worker.bgw_name, BGW_MAXLEN, "pg_causal relay");
    snprintf(worker.bgw_type, BGW_MAXLEN, "pg_causal relay");
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_causal");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "causal_relay_worker_main");
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    worker.bgw_main_arg = ObjectIdGetDatum(role);
    std::memcpy(worker.bgw_extra, &MyDatabaseId, sizeof(Oid));
    worker.bgw_notify_pid = MyProcPid;
    MemoryContext outside = MemoryContextSwitchTo(TopMemoryContext);
    if (!RegisterDynamicBackgroundWorker(&worker, &relay_handle)) relay_handle = nullptr;
    MemoryContextSwitchTo(outside);
}

}  // namespace causal::pg

using namespace causal::pg;

extern "C" PGDLLEXPORT void causal_relay_worker_main(Datum role);

void causal_relay_worker_main(Datum role) {
    Oid database = InvalidOid;
    std::memcpy(&database, MyBgworkerEntry->bgw_extra, sizeof(Oid));
    connect_worker_as(database, DatumGetObjectId(role));
    // libpqwalreceiver: the connection a subscription uses, interruptible
    // while it waits, and no libpq of pg_causal's own.
    load_file("libpqwalreceiver", false);
    pull_timeout = RegisterTimeout(USER_TIMEOUT, pull_timed_out);
    MemoryContext round_memory =
        AllocSetContextCreate(TopMemoryContext, "pg_causal relay round", ALLOCSET_DEFAULT_SIZES);
    const int64 started_ms = now_ms();
    run_rounds(
        relay_nap_ms, [&] { relay_once(round_memory, started_ms); }, [] { close_connection(); }, [] {});
}

// causal.relay_stats(): what the relay did since the server started.
CAUSAL_FUNCTION(relay_stats) {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("relay_stats must be called in a context that accepts a row")));
    RelayStats copy{};
    if (shared_relay_stats != nullptr) {
        SpinLockAcquire(&shared_relay_stats->mutex);
        copy = *shared_relay_stats;
        SpinLockRelease(&shared_relay_stats->mutex);
    }
    Datum values[6] = {Int64GetDatum(copy.pulls), Int64GetDatum(copy.failed_pulls), Int64GetDatum(copy.rows),
                       Int64GetDatum(copy.pages), Float8GetDatum(static_cast<double>(copy.microseconds) / 1e6),
                       TimestampTzGetDatum(copy.last_pull_at)};
    bool nulls[6] = {false, false, false, false, false, copy.last_pull_at == 0};
    return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

namespace {

bool wake_relay_on_commit = false;

// The count moves only once the request is visible: a relay that read it
// before, and the table without the request, reads both again.
void wake_relay(XactEvent event, void*) {
    if (event == XACT_EVENT_COMMIT && wake_relay_on_commit && shared_relay_stats != nullptr)
        pg_atomic_fetch_add_u64(&shared_relay_stats->requests_committed, 1);
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
        event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
        wake_relay_on_commit = false;
}

}  // namespace

void causal::pg::wake_relay_at_commit() {
    static bool registered = false;
    if (!registered) {
        RegisterXactCallback(wake_relay, nullptr);
        registered = true;
    }
    wake_relay_on_commit = true;
}

// causal.request_pull(peer): asks this region's relay for `peer`'s own
// rows, from `peer`, since this region's stable point for it (causalctl
// reseed, after making the links without a copy). Done when its row of
// causal.pull_requests is gone.
CAUSAL_FUNCTION(request_pull) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("causal.request_pull needs a region")));
    const Oid type = TEXTOID;
    const Datum arg = PG_GETARG_DATUM(0);
    SPI_connect();
    // An earlier request's point, if any, is the lower: it stays.
    spi_run("INSERT INTO causal.pull_requests (peer, since)"
            " SELECT $1, (SELECT h.stable FROM causal.heartbeats h WHERE h.region OPERATOR(pg_catalog.=) $1)"
            "  WHERE EXISTS (SELECT FROM causal.regions r WHERE r.region OPERATOR(pg_catalog.=) $1)"
            " ON CONFLICT (peer) DO NOTHING",
            SPI_OK_INSERT, {1, &type, &arg});
    const bool known = SPI_processed > 0 ||
                       (spi_run("SELECT 1 FROM causal.pull_requests r WHERE r.peer OPERATOR(pg_catalog.=) $1",
                                SPI_OK_SELECT, {1, &type, &arg}, true),
                        SPI_processed > 0);
    SPI_finish();
    if (!known)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("region \"%s\" is not registered", TextDatumGetCString(arg))));
    wake_relay_at_commit();
    PG_RETURN_VOID();
}
