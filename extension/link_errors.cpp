#include "link_errors.hpp"

#include <cstring>

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
    char sqlstate[6];
    char message[kMessageBytes];
};

struct Shared {
    slock_t mutex;
    Entry entries[kEntries];
};

Shared* shared = nullptr;
emit_log_hook_type previous_emit_log_hook = nullptr;

void record(ErrorData* edata) {
    if (previous_emit_log_hook) previous_emit_log_hook(edata);
    // A replication worker's error, reported as it ends the worker: the
    // subscription is known then. Nothing here may raise.
    if (shared == nullptr || edata->elevel < ERROR || MyLogicalRepWorker == nullptr || MySubscription == nullptr)
        return;
    const char* sqlstate = unpack_sql_state(edata->sqlerrcode);
    const TimestampTz now = GetCurrentTimestamp();
    // Cut on a character boundary: a split multibyte character would make
    // the text invalid for whoever reads it.
    const char* message = edata->message != nullptr ? edata->message : "";
    const int length = pg_mbcliplen(message, static_cast<int>(std::strlen(message)), kMessageBytes - 1);
    SpinLockAcquire(&shared->mutex);
    Entry* slot = nullptr;
    for (auto& e : shared->entries)
        if (e.subscription == MySubscription->oid) slot = &e;
    for (auto& e : shared->entries)
        if (slot == nullptr && e.subscription == InvalidOid) slot = &e;
    if (slot == nullptr) {
        slot = &shared->entries[0];
        for (auto& e : shared->entries)
            if (e.at < slot->at) slot = &e;
    }
    slot->subscription = MySubscription->oid;
    slot->database = MyDatabaseId;
    slot->at = now;
    slot->table_sync = OidIsValid(MyLogicalRepWorker->relid);
    std::strncpy(slot->sqlstate, sqlstate, sizeof slot->sqlstate - 1);
    slot->sqlstate[sizeof slot->sqlstate - 1] = '\0';
    std::memcpy(slot->message, message, length);
    slot->message[length] = '\0';
    SpinLockRelease(&shared->mutex);
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

void link_errors_install_hook() {
    previous_emit_log_hook = emit_log_hook;
    emit_log_hook = record;
}

}  // namespace causal::pg

using namespace causal::pg;

// causal.link_errors(): the last error of each subscription of this
// database since the server started. The text is the server's message,
// which may quote row values: only causal_admin and pg_monitor read it.
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
        Datum values[5];
        bool nulls[5] = {false, false, false, false, false};
        values[0] = ObjectIdGetDatum(e.subscription);
        values[1] = TimestampTzGetDatum(e.at);
        values[2] = BoolGetDatum(e.table_sync);
        values[3] = CStringGetTextDatum(e.sqlstate);
        values[4] = CStringGetTextDatum(e.message);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return Datum(0);
}
