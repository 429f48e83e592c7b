#include "mesh/link_errors.hpp"

#include <cstring>
#include <string>

#include "core/links.hpp"
#include "infra/guard.hpp"
#include "infra/settings.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_subscription.h"
#include "mb/pg_wchar.h"
#include "funcapi.h"
#include "replication/worker_internal.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace causal::pg {
namespace {

// One per subscription that failed since the server started; the oldest
// entry makes room when all are taken.
constexpr int kEntries = 64;
constexpr size_t kMessageBytes = 512;

struct Entry {
    Oid subscription;  // InvalidOid: free
    Oid database;
    TimestampTz at;
    bool table_sync;   // the error was a table sync worker's (the first copy)
    bool by_relay;     // the relay's, pulling what the link's source wrote through another peer
    char sqlstate[6];
    char message[kMessageBytes];
    char object[kMessageBytes];
};

struct Shared {
    slock_t mutex;
    Entry entries[kEntries];
};

Shared* shared = nullptr;
emit_log_hook_type previous_emit_log_hook = nullptr;

// Keeps one error per link and kind (the workers', the relay's): the
// newest, the oldest entry making room when all are taken. Nothing here may
// raise: it runs inside error reporting.
void remember(Oid subscription, bool table_sync, bool by_relay, const char* sqlstate, const char* message,
              const char* object, TimestampTz now) {
    // Cut on a character boundary: a split multibyte character would make
    // the text invalid for whoever reads it.
    const int length = pg_mbcliplen(message, static_cast<int>(std::strlen(message)), kMessageBytes - 1);
    SpinLockAcquire(&shared->mutex);
    Entry* slot = nullptr;
    for (auto& e : shared->entries)
        if (e.subscription == subscription && e.by_relay == by_relay) slot = &e;
    for (auto& e : shared->entries)
        if (slot == nullptr && e.subscription == InvalidOid) slot = &e;
    if (slot == nullptr) {
        slot = &shared->entries[0];
        for (auto& e : shared->entries)
            if (e.at < slot->at) slot = &e;
    }
    slot->subscription = subscription;
    slot->database = MyDatabaseId;
    slot->at = now;
    slot->table_sync = table_sync;
    slot->by_relay = by_relay;
    std::strncpy(slot->sqlstate, sqlstate, sizeof slot->sqlstate - 1);
    slot->sqlstate[sizeof slot->sqlstate - 1] = '\0';
    std::memcpy(slot->message, message, length);
    slot->message[length] = '\0';
    const int object_length = pg_mbcliplen(object, static_cast<int>(std::strlen(object)), kMessageBytes - 1);
    std::memcpy(slot->object, object, object_length);
    slot->object[object_length] = '\0';
    SpinLockRelease(&shared->mutex);
}

void record(ErrorData* edata) {
    if (previous_emit_log_hook) previous_emit_log_hook(edata);
    // A replication worker's error, reported as it ends the worker: the
    // subscription is known then. Nothing here may raise.
    if (shared == nullptr || edata->elevel < ERROR || MyLogicalRepWorker == nullptr || MySubscription == nullptr)
        return;
    const char* sqlstate = unpack_sql_state(edata->sqlerrcode);
    const TimestampTz now = GetCurrentTimestamp();
    // The message as PostgreSQL wrote it before the values went in: a
    // refused row's values (a message's body, in an input syntax error or a
    // constraint's) are not for those who read this. A connection error's
    // text is libpq's and the peer's, about the network, and says what the
    // template does not (which host, which slot).
    const bool connection = ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION;
    const char* message = connection && edata->message != nullptr ? edata->message
                          : edata->message_id != nullptr       ? edata->message_id
                                                               : "";
    // The objects PostgreSQL named with the error, which the catalog shows
    // anyway.
    char object[kMessageBytes];
    snprintf(object, sizeof object, "%s%s%s%s%s%s%s", edata->schema_name ? edata->schema_name : "",
             edata->schema_name && edata->table_name ? "." : "", edata->table_name ? edata->table_name : "",
             edata->column_name ? "." : "", edata->column_name ? edata->column_name : "",
             edata->constraint_name ? " constraint " : "", edata->constraint_name ? edata->constraint_name : "");
    remember(MySubscription->oid, OidIsValid(MyLogicalRepWorker->relid), false, sqlstate, message, object, now);
}

}  // namespace

void link_errors_request_shmem() { RequestAddinShmemSpace(MAXALIGN(sizeof(Shared))); }

void link_errors_startup_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared*>(ShmemInitStruct("pg_causal link errors", sizeof(Shared), &found));
    if (!found) {
        SpinLockInit(&shared->mutex);
        for (auto& e : shared->entries) e.subscription = InvalidOid;
    }
    LWLockRelease(AddinShmemInitLock);
}

void record_relay_error(const char* source_region, int sqlerrcode, const char* message, const char* object) {
    if (shared == nullptr) return;
    // No destructor across the catalog lookup, which may raise.
    char link[NAMEDATALEN * 3];
    cpp_guard([&] {
        strlcpy(link, causal::link_name(source_region, region_setting ? region_setting : "").c_str(), sizeof link);
    });
    const Oid subscription = get_subscription_oid(link, true);
    if (!OidIsValid(subscription)) return;
    remember(subscription, false, true, unpack_sql_state(sqlerrcode), message, object, GetCurrentTimestamp());
}

void link_errors_install_hook() {
    previous_emit_log_hook = emit_log_hook;
    emit_log_hook = record;
}

}  // namespace causal::pg

using namespace causal::pg;

// causal.link_errors(): the last error of each subscription of this
// database since the server started: its SQLSTATE, its message without the
// values (record() above), and the objects it names. For causal_admin and
// pg_monitor.
CAUSAL_FUNCTION(link_errors) {
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (shared == nullptr) return Datum(0);
    Entry entries[kEntries];
    SpinLockAcquire(&shared->mutex);
    std::memcpy(entries, shared->entries, sizeof entries);
    SpinLockRelease(&shared->mutex);
    for (const Entry& e : entries) {
        if (e.subscription == InvalidOid || e.database != MyDatabaseId) continue;
        Datum values[7];
        bool nulls[7] = {false, false, false, false, false, e.object[0] == '\0', false};
        values[0] = ObjectIdGetDatum(e.subscription);
        values[1] = TimestampTzGetDatum(e.at);
        values[2] = BoolGetDatum(e.table_sync);
        values[3] = CStringGetTextDatum(e.sqlstate);
        values[4] = CStringGetTextDatum(e.message);
        values[5] = CStringGetTextDatum(e.object);
        values[6] = BoolGetDatum(e.by_relay);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return Datum(0);
}
