// The instance clock in shared memory: one per PostgreSQL instance, shared by
// every backend, persisted ahead of time so that no value is issued twice.
#pragma once

#include "core/hlc.hpp"

namespace causal::pg {

// Hooks wired by _PG_init when the library is preloaded.
void clock_request_shmem();
void clock_startup_shmem();
void clock_register_worker();

// A local/send event: strictly above every value this instance issued.
Hlc clock_now();

// The packed physical and logical part of the last value issued: every
// value issued later is above it.
uint64_t clock_last_wall();

// A receive event. A remote value within causal.max_clock_offset of the
// local wall clock is adopted (the result is above it); one further ahead
// is not: it is counted, a WARNING says so, and the result is a local tick,
// which may then be below the remote value. Never raises for the offset.
struct Observation {
    Hlc value;
    bool adopted;
};
Observation clock_observe(const Hlc& remote);

}  // namespace causal::pg
