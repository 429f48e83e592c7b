#include "mesh/replication_role.hpp"

#include "infra/spi.hpp"
#include "table/table_shape.hpp"

extern "C" {
#include "access/parallel.h"
#include "executor/executor.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

namespace causal::pg {

namespace {

ExecutorStart_hook_type previous_executor_start = nullptr;
ProcessUtility_hook_type previous_process_utility = nullptr;

// The role's OID, looked up again after any change to pg_authid.
Oid role_oid = InvalidOid;
bool role_known = false;
void forget_role(Datum, int, uint32) { role_known = false; }

bool runs_as_replication_role() {
    if (!role_known) {
        // Outside a transaction there is no catalog to read (and no SQL).
        if (!IsTransactionState()) return false;
        role_oid = replication_role();
        role_known = true;
    }
    return OidIsValid(role_oid) && GetUserId() == role_oid;
}

void refuse_foreign_statement() {
    // A parallel worker runs part of its leader's statement, which passed.
    if (in_own_statement() || IsParallelWorker() || !runs_as_replication_role()) return;
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("%s runs no SQL statements but pg_causal's own", kReplicationRole),
                    errdetail("It runs PostgreSQL's replication workers and pg_causal's relay; code that reaches it "
                              "(a function a table's default or constraint calls) may not query with its rights."),
                    errhint("Keep a message table to built-in types and functions (causal.message_table_problem() "
                            "says what is outside).")));
}

void executor_start(QueryDesc* query, int flags) {
    refuse_foreign_statement();
    if (previous_executor_start)
        previous_executor_start(query, flags);
    else
        standard_ExecutorStart(query, flags);
}

void process_utility(PlannedStmt* statement, const char* query, bool read_only_tree, ProcessUtilityContext context,
                     ParamListInfo params, QueryEnvironment* environment, DestReceiver* dest, QueryCompletion* completion) {
    refuse_foreign_statement();
    if (previous_process_utility)
        previous_process_utility(statement, query, read_only_tree, context, params, environment, dest, completion);
    else
        standard_ProcessUtility(statement, query, read_only_tree, context, params, environment, dest, completion);
}

}  // namespace

void replication_role_install_hooks() {
    previous_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = executor_start;
    previous_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
    CacheRegisterSyscacheCallback(AUTHOID, forget_role, 0);
}

int restart_workers_of_former_owners() {
    spi_run("SELECT pg_catalog.pg_terminate_backend(w.pid) FROM pg_catalog.pg_stat_subscription w"
            "  JOIN pg_catalog.pg_subscription s ON s.oid OPERATOR(pg_catalog.=) w.subid"
            "  JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) w.pid"
            " WHERE a.usesysid OPERATOR(pg_catalog.<>) s.subowner"
            "   AND s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d"
            "                                         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())"
            "   AND s.subpublications OPERATOR(pg_catalog.&&) '{causal_mesh,causal_messages,causal_copy}'::pg_catalog.text[]",
            SPI_OK_SELECT);
    const int restarted = static_cast<int>(SPI_processed);
    if (restarted > 0)
        ereport(LOG, (errmsg("pg_causal restarted %d replication worker%s that ran as the former owner of its "
                             "subscription",
                             restarted, restarted == 1 ? "" : "s")));
    return restarted;
}

}  // namespace causal::pg
