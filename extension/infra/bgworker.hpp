// Registering pg_causal's background workers (the library must be preloaded).
#pragma once

#include "infra/postgres.hpp"

extern "C" {
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
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

// A worker's start in causal.database, the mesh's: a superuser's session,
// whose settings the database's owner may choose (ALTER DATABASE ... SET).
// What would change what it runs, or stop it, is pinned over whatever the
// database says, as autovacuum does. Its writes never wait for a
// synchronous standby either: they are how peers learn this region is there.
void connect_worker_to_mesh_database();
// A worker a process of this library started in `database`, as `role`.
void connect_worker_as(Oid database, Oid role);

// The worker's life: `round()` every `nap_ms` until shutdown. An error (a
// lock timeout, a table being altered, a peer gone) costs one round, not the
// worker: `after_error()` then cleans up what the round left open. Neither
// may own anything with a destructor: an error longjmps through them.
template <typename Round, typename AfterError>
void run_rounds(long nap_ms, Round round, AfterError after_error) {
    for (;;) {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, nap_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        if (ShutdownRequestPending) break;
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        CHECK_FOR_INTERRUPTS();
        MemoryContext outside = CurrentMemoryContext;
        PG_TRY();
        {
            round();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(outside);
            EmitErrorReport();
            FlushErrorState();
            AbortCurrentTransaction();
            SPI_finish();
            pgstat_report_activity(STATE_IDLE, nullptr);
            after_error();
        }
        PG_END_TRY();
    }
    proc_exit(0);
}

}  // namespace causal::pg
