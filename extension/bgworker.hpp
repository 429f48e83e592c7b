// Registering pg_causal's background workers (the library must be preloaded).
#pragma once

#include "postgres.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace causal::pg {

// A worker of this library named `name`, entering at the extern "C"
// function `entry`, restarted `restart_s` seconds after it exits.
inline void register_worker(const char* name, const char* entry, int flags, BgWorkerStartTime start,
                            int restart_s) {
    BackgroundWorker worker = {};
    snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_causal");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", entry);
    worker.bgw_flags = flags;
    worker.bgw_start_time = start;
    worker.bgw_restart_time = restart_s;
    RegisterBackgroundWorker(&worker);
}

}  // namespace causal::pg
