// Per-table counters of the message trigger, in shared memory so that every
// backend and the replication apply workers add to the same numbers
// (causal.stat_tables). Counted since the server started.
#pragma once

#include "infra/postgres.hpp"

namespace causal::pg {

enum class Counter {
    LocalInserts,
    Applied,
    Duplicates,
    WinnersReplaced,
    Orphans,
    Quarantined,
    OffsetRejections,
    Announced,
};
constexpr int kCounterCount = 8;

void table_stats_request_shmem();
void table_stats_startup_shmem();

// Adds one; a no-op without shared memory (not preloaded) or when the table
// of tables is full (a WARNING says so, once per backend).
void count(Oid relid, Counter counter);

}  // namespace causal::pg
