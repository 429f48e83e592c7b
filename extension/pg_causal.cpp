// The module's entry (_PG_init): every subsystem's settings, shared memory,
// workers and hooks wired in one place, above them all.
#include "hlc/clock.hpp"
#include "mesh/link_errors.hpp"
#include "table/listeners.hpp"
#include "table/notify.hpp"
#include "mesh/liveness.hpp"
#include "mesh/relay.hpp"
#include "infra/owner.hpp"
#include "infra/postgres.hpp"
#include "mesh/replication_role.hpp"
#include "infra/settings.hpp"
#include "read/stable.hpp"
#include "table/table_stats.hpp"

extern "C" {
#include "storage/ipc.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace causal::pg {

int node_id_setting = -1;
char* region_setting = nullptr;
int max_clock_offset_ms = 500;
bool allow_drop_extension = false;

uint16_t require_node_id() {
    if (node_id_setting < 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("causal.node_id is not set"),
                        errdetail("Every timestamp carries the node id of the instance that "
                                  "issued it; each region needs its own."),
                        errhint("Set causal.node_id (0 to 65535) in postgresql.conf and reload.")));
    return static_cast<uint16_t>(node_id_setting);
}

const char* require_region() {
    if (region_setting == nullptr || region_setting[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("causal.region is not set"),
                        errhint("Set causal.region to this region's name in postgresql.conf "
                                "and reload.")));
    return region_setting;
}

namespace {

shmem_request_hook_type previous_shmem_request_hook = nullptr;
shmem_startup_hook_type previous_shmem_startup_hook = nullptr;

void request_shmem() {
    if (previous_shmem_request_hook) previous_shmem_request_hook();
    clock_request_shmem();
    table_stats_request_shmem();
    liveness_request_shmem();
    stable_request_shmem();
    listeners_request_shmem();
    link_errors_request_shmem();
    relay_request_shmem();
}

void startup_shmem() {
    if (previous_shmem_startup_hook) previous_shmem_startup_hook();
    clock_startup_shmem();
    table_stats_startup_shmem();
    liveness_startup_shmem();
    stable_startup_shmem();
    listeners_startup_shmem();
    link_errors_startup_shmem();
    relay_startup_shmem();
}

void define_settings() {
    DefineCustomIntVariable(
        "causal.node_id", "This instance's node id, the tiebreak of every hlc it issues.",
        "Each region needs a distinct id from 0 to 65535; -1 means not set, and then no "
        "timestamps are issued.",
        &node_id_setting, -1, -1, 65535, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("causal.region", "The name of this instance's region.",
                               "Returned by causal.gateway_region().", &region_setting, "",
                               PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "causal.max_clock_offset",
        "How far ahead of the local clock a remote hlc may be and still be adopted.",
        "A remote timestamp further ahead is kept but does not move the local clock.",
        &max_clock_offset_ms, 500, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "causal.self_fence_after",
        "How long this region may hear from fewer than a majority of regions before it fences itself.",
        "Heard means a peer's heartbeat arrived by replication. While fenced it refuses local writes "
        "(5C001); it lifts its own fence when it hears a majority again. 0 turns self-fencing off: "
        "a region cut off keeps taking writes, which become orphans if the others fence it.",
        &self_fence_after_setting, 0, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("causal.heartbeat_interval", "How often this region writes its heartbeat.",
                            "The heartbeat is a row of causal.heartbeats that replication carries to "
                            "the other regions.",
                            &heartbeat_interval_setting, 1000, 100, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable(
        "causal.relay_after",
        "How long this region may go without hearing a peer's heartbeat before it pulls that peer's messages "
        "from the peers it hears.",
        "Each region publishes only what its own writes made; a region cut off from a writer takes the "
        "writer's messages from a peer that has them, over its subscription's connection to that peer. "
        "0 turns relay off: a cut link then delays that writer's messages until it heals.",
        &relay_after_setting, 2000, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "causal.max_hlc_lead",
        "How far ahead of this region's clock a replicated message's hlc may be before it is quarantined.",
        "No clock of the mesh can be that far ahead; kept, such a message would sort after every message to "
        "come, for good. Rows less far ahead than this but beyond causal.max_clock_offset are kept, and do not "
        "move the clock.",
        &max_hlc_lead_s, 60, 1, 366 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    static const config_enum_entry payloads[] = {{"kind", static_cast<int>(NotifyPayload::Kind), false},
                                                 {"hlc", static_cast<int>(NotifyPayload::Hlc), false},
                                                 {nullptr, 0, false}};
    DefineCustomEnumVariable(
        "causal.notify_payload", "What a message table's NOTIFY says of each message: its kind, or its kind and hlc.",
        "PostgreSQL lets any login LISTEN on any channel: kind (message, orphan, deleted) says only what any login "
        "may know; hlc adds when and where each message was written, for a server whose every login may know that.",
        &notify_payload, static_cast<int>(NotifyPayload::Kind), payloads, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "causal.allow_drop_extension",
        "Lets DROP EXTENSION pg_causal CASCADE drop the hlc, deps and deleted_at columns of message tables.",
        "Off: DROP EXTENSION refuses while causal message tables exist, and says which.", &allow_drop_extension,
        false, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    // A postmaster setting can only be defined while preloading; without
    // preloading there is no liveness worker for it to steer.
    if (process_shared_preload_libraries_in_progress)
        DefineCustomStringVariable("causal.database", "The database of the mesh, where the liveness worker runs.",
                                   nullptr, &liveness_database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr,
                                   nullptr);
    MarkGUCPrefixReserved("causal");
}

}  // namespace
}  // namespace causal::pg

void _PG_init(void) {
    using namespace causal::pg;
    define_settings();
    owner_register_callbacks();
    replication_role_install_hooks();
    if (!process_shared_preload_libraries_in_progress) return;
    previous_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    previous_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
    clock_register_worker();
    liveness_register_worker();
    listeners_install_hook();
    link_errors_install_hook();
}
