// Registering pg_causal's background workers (the library must be preloaded).
#pragma once

#include <type_traits>

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
#include "storage/lwlock.h"
#include "utils/wait_event.h"
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

// After an error, a worker sleeps at least a second, and up to a second
// more at random: a worker that fails every round neither floods the log
// nor retries in step with the other regions' workers. A shutdown still
// ends the sleep.
void sleep_after_error();

// The worker's life, as PostgreSQL's own workers live it (bgwriter.c,
// autovacuum.c): `round()` every `nap_ms` (read before each nap: a round
// may change it) until shutdown, `after_reload()`
// after each configuration reload. An error (a lock timeout, a table being
// altered, a peer gone) costs one round, not the worker: the error block
// holds interrupts, reports it, aborts the transaction (which ends SPI
// too: no SPI_finish after it), releases the LWLocks, lets
// `after_error()` clean up what is the worker's own (it must not raise),
// and sleeps (sleep_after_error). The block is a sigsetjmp: nothing with a
// destructor may be alive across it, so the three callables may capture
// nothing that has one, and the rounds may own nothing that has one.
template <typename Round, typename AfterError, typename AfterReload>
[[noreturn]] void run_rounds(const long& nap_ms, Round round, AfterError after_error, AfterReload after_reload) {
    static_assert(std::is_trivially_destructible_v<Round> && std::is_trivially_destructible_v<AfterError> &&
                      std::is_trivially_destructible_v<AfterReload>,
                  "an error longjmps past the callables of a worker's rounds");
    MemoryContext worker_context = CurrentMemoryContext;
    sigjmp_buf error_block;
    if (sigsetjmp(error_block, 1) != 0) {
        error_context_stack = nullptr;
        HOLD_INTERRUPTS();
        EmitErrorReport();
        AbortCurrentTransaction();
        LWLockReleaseAll();
        pgstat_report_wait_end();
        MemoryContextSwitchTo(worker_context);
        FlushErrorState();
        pgstat_report_activity(STATE_IDLE, nullptr);
        after_error();
        RESUME_INTERRUPTS();
        sleep_after_error();
    }
    PG_exception_stack = &error_block;
    for (;;) {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, nap_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        if (ShutdownRequestPending) proc_exit(0);
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            after_reload();
        }
        CHECK_FOR_INTERRUPTS();
        round();
    }
}

}  // namespace causal::pg
