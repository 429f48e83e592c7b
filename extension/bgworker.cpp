#include "bgworker.hpp"

#include "settings.hpp"
#include "spi.hpp"

extern "C" {
#include "tcop/tcopprot.h"
#include "utils/guc.h"
}

namespace causal::pg {

void connect_worker_to_mesh_database() {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);  // also out of a lock wait inside SPI
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(liveness_database, nullptr, 0);
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

}  // namespace causal::pg
