#include "infra/bgworker.hpp"

#include "infra/settings.hpp"
#include "infra/spi.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "tcop/tcopprot.h"
#include "utils/timestamp.h"
#include "utils/guc.h"
}

namespace causal::pg {

namespace {

// What would change what a worker runs, or stop it, is pinned over whatever
// the database says, as autovacuum does.
void pin_worker_settings() {
    const struct {
        const char* name;
        const char* value;
    } pinned[] = {{"search_path", kPinnedSearchPath},
                  {"role", "none"},
                  {"default_transaction_read_only", "off"},
                  {"default_transaction_isolation", "read committed"},
                  {"statement_timeout", "0"},
                  {"lock_timeout", "0"},
                  {"idle_in_transaction_session_timeout", "0"},
                  {"synchronous_commit", "local"}};
    for (const auto& setting : pinned) SetConfigOption(setting.name, setting.value, PGC_SUSET, PGC_S_OVERRIDE);
}

void unblock_signals() {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);  // also out of a lock wait inside SPI
    BackgroundWorkerUnblockSignals();
}

}  // namespace

void sleep_after_error() {
    const long sleep_ms = 1000 + static_cast<long>(pg_prng_uint64_range(&pg_global_prng_state, 0, 1000));
    const TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), sleep_ms);
    for (long left = sleep_ms; left > 0 && !ShutdownRequestPending;
         left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until)) {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

void connect_worker_to_mesh_database() {
    unblock_signals();
    BackgroundWorkerInitializeConnection(liveness_database, nullptr, 0);
    pin_worker_settings();
}

void connect_worker_as(Oid database, Oid role) {
    unblock_signals();
    BackgroundWorkerInitializeConnectionByOid(database, role, 0);
    pin_worker_settings();
}

}  // namespace causal::pg
