// The last error of each subscription's apply (or table sync) worker, kept
// in shared memory. PostgreSQL 15 counts a link's errors
// (pg_stat_subscription_stats) but keeps their text only in the server log;
// an operator whose link stopped (a column added in one region: "missing
// replicated column") needs the text and what to do, where causalctl status
// can show it. An emit_log_hook in the replication workers records it.
#pragma once

#include "infra/postgres.hpp"

namespace causal::pg {

void link_errors_request_shmem();
void link_errors_startup_shmem();
void link_errors_install_hook();

// An error of the relay's on the link from `source_region` (a peer it
// pulls the messages of through another): kept beside the link's workers'
// last error, so that causalctl status shows why what the relay should
// bring does not come. `message` without a row's values.
void record_relay_error(const char* source_region, int sqlerrcode, const char* message, const char* object);

}  // namespace causal::pg
