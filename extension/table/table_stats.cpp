#include "table/table_stats.hpp"

#include "infra/postgres.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"
}

namespace causal::pg {

namespace {

// Enough for every message table of a deployment; the table of tables is
// fixed in size because shared memory is.
constexpr long kMaxTables = 1024;
constexpr const char* kHashName = "pg_causal table stats";
constexpr const char* kTrancheName = "pg_causal table stats";

struct Key {
    Oid database;
    Oid relid;
};

struct Entry {
    Key key;  // first, as dynahash requires
    pg_atomic_uint64 counters[kCounterCount];
};

HTAB* shared_stats = nullptr;
LWLock* stats_lock = nullptr;

Entry* find_or_add(Oid relid) {
    Key key = {MyDatabaseId, relid};
    LWLockAcquire(stats_lock, LW_SHARED);
    auto* entry = static_cast<Entry*>(hash_search(shared_stats, &key, HASH_FIND, nullptr));
    LWLockRelease(stats_lock);
    if (entry != nullptr) return entry;

    LWLockAcquire(stats_lock, LW_EXCLUSIVE);
    bool found = false;
    entry = static_cast<Entry*>(hash_search(shared_stats, &key, HASH_ENTER_NULL, &found));
    if (entry != nullptr && !found)
        for (auto& counter : entry->counters) pg_atomic_init_u64(&counter, 0);
    LWLockRelease(stats_lock);
    return entry;
}

}  // namespace

void table_stats_request_shmem() {
    RequestAddinShmemSpace(hash_estimate_size(kMaxTables, sizeof(Entry)));
    RequestNamedLWLockTranche(kTrancheName, 1);
}

void table_stats_startup_shmem() {
    HASHCTL info = {};
    info.keysize = sizeof(Key);
    info.entrysize = sizeof(Entry);
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared_stats = ShmemInitHash(kHashName, kMaxTables, kMaxTables, &info, HASH_ELEM | HASH_BLOBS);
    stats_lock = &GetNamedLWLockTranche(kTrancheName)->lock;
    LWLockRelease(AddinShmemInitLock);
}

void count(Oid relid, Counter counter) {
    if (shared_stats == nullptr) return;
    // Entries are never removed, so a pointer found once stays good.
    static Oid cached_relid = InvalidOid;
    static Oid cached_database = InvalidOid;
    static Entry* cached = nullptr;
    if (cached == nullptr || cached_relid != relid || cached_database != MyDatabaseId) {
        cached = find_or_add(relid);
        cached_relid = relid;
        cached_database = MyDatabaseId;
        if (cached == nullptr) {
            static bool warned = false;
            if (!warned)
                ereport(WARNING, (errmsg("pg_causal counts at most %ld message tables", kMaxTables),
                                  errdetail("causal.stat_tables misses the counts of the others.")));
            warned = true;
            return;
        }
    }
    pg_atomic_fetch_add_u64(&cached->counters[static_cast<int>(counter)], 1);
}

}  // namespace causal::pg

CAUSAL_FUNCTION(table_stats) {
    using namespace causal::pg;
    InitMaterializedSRF(fcinfo, 0);
    if (shared_stats == nullptr) PG_RETURN_VOID();
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    LWLockAcquire(stats_lock, LW_SHARED);
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, shared_stats);
    while (auto* entry = static_cast<Entry*>(hash_seq_search(&scan))) {
        if (entry->key.database != MyDatabaseId) continue;
        // A table's activity, and its name, only to who may read the table.
        bool missing = false;
        if (pg_class_aclcheck_ext(entry->key.relid, GetUserId(), ACL_SELECT, &missing) != ACLCHECK_OK || missing)
            continue;
        Datum values[1 + kCounterCount];
        bool nulls[1 + kCounterCount] = {};
        values[0] = ObjectIdGetDatum(entry->key.relid);
        for (int i = 0; i < kCounterCount; ++i)
            values[1 + i] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&entry->counters[i])));
        tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    }
    LWLockRelease(stats_lock);
    PG_RETURN_VOID();
}
