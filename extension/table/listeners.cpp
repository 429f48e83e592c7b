#include "table/listeners.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
}


namespace causal::pg {

namespace {

// Databases hash to slots; two that share one only announce more than they
// need to.
constexpr int kSlots = 256;

struct Listeners {
    pg_atomic_uint32 sessions[kSlots];
    // Per process (pgprocno): the xid of its transaction that may have
    // written a message without announcing it, or 0.
    int processes;
    pg_atomic_uint32 unannounced[FLEXIBLE_ARRAY_MEMBER];
};
Listeners* shared_listeners = nullptr;

int process_count() { return MaxBackends + NUM_AUXILIARY_PROCS; }
Size listeners_size() {
    return add_size(offsetof(Listeners, unannounced), mul_size(process_count(), sizeof(pg_atomic_uint32)));
}

// The slot this session counts itself in, -1 while it does not.
int counted_slot = -1;
// UNLISTEN * or DISCARD ALL ran in this transaction, at this subtransaction
// level (0: none): stop counting if it commits. Like UNLISTEN itself, it is
// undone when its subtransaction aborts.
int stop_at_commit_level = 0;
// This transaction is marked in `unannounced`.
bool marked = false;

ProcessUtility_hook_type previous_process_utility = nullptr;

int slot_of(Oid database) { return static_cast<int>(database % kSlots); }

void stop_counting() {
    if (counted_slot < 0) return;
    pg_atomic_fetch_sub_u32(&shared_listeners->sessions[counted_slot], 1);
    counted_slot = -1;
}

void stop_counting_at_exit(int, Datum) { stop_counting(); }

void settle_at_transaction_end(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_COMMIT:
            if (stop_at_commit_level > 0) stop_counting();
            stop_at_commit_level = 0;
            break;
        case XACT_EVENT_ABORT:
            stop_at_commit_level = 0;
            break;
        default:
            break;
    }
}

void settle_at_subtransaction_end(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    if (stop_at_commit_level == 0) return;
    const int level = GetCurrentTransactionNestLevel();
    if (event == SUBXACT_EVENT_ABORT_SUB && stop_at_commit_level >= level) stop_at_commit_level = 0;
    if (event == SUBXACT_EVENT_COMMIT_SUB && stop_at_commit_level >= level) stop_at_commit_level = level - 1;
}

// After the commit is visible (or the abort done): a listener that finds
// no mark may rely on its next snapshot.
void clear_mark(XactEvent event, void*) {
    if (!marked) return;
    switch (event) {
        case XACT_EVENT_PRE_PREPARE:
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("cannot PREPARE a transaction that wrote to a causal message table with "
                                   "notify => true"),
                            errdetail("A prepared transaction cannot announce its messages, as it cannot NOTIFY.")));
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            pg_atomic_write_u32(&shared_listeners->unannounced[MyProc->pgprocno], InvalidTransactionId);
            marked = false;
            break;
        default:
            break;
    }
}

// The count was raised (a full barrier) before the marks are read; a
// writer marks its transaction before it reads the count (a full barrier
// between, someone_may_listen): either it saw the count raised and
// announces, or its mark is seen here and waited for.
void wait_for_unannounced_writers() {
    pg_memory_barrier();
    // palloc'd: a wait can end in an error (cancel, lock_timeout, deadlock).
    auto* running = static_cast<TransactionId*>(palloc(sizeof(TransactionId) * shared_listeners->processes));
    int count = 0;
    for (int i = 0; i < shared_listeners->processes; ++i) {
        const TransactionId xid = pg_atomic_read_u32(&shared_listeners->unannounced[i]);
        // A writer of another database announces to that database's listeners.
        if (TransactionIdIsValid(xid) && i != MyProc->pgprocno && ProcGlobal->allProcs[i].databaseId == MyDatabaseId)
            running[count++] = xid;
    }
    for (int i = 0; i < count; ++i) XactLockTableWait(running[i], nullptr, nullptr, XLTW_None);
    pfree(running);
}

void start_counting() {
    stop_at_commit_level = 0;
    if (counted_slot >= 0) return;
    static bool registered = false;
    if (!registered) {
        before_shmem_exit(stop_counting_at_exit, 0);
        RegisterXactCallback(settle_at_transaction_end, nullptr);
        RegisterSubXactCallback(settle_at_subtransaction_end, nullptr);
        registered = true;
    }
    counted_slot = slot_of(MyDatabaseId);
    pg_atomic_fetch_add_u32(&shared_listeners->sessions[counted_slot], 1);
    wait_for_unannounced_writers();
}

void process_utility(PlannedStmt* statement, const char* query, bool read_only_tree, ProcessUtilityContext context,
                     ParamListInfo params, QueryEnvironment* environment, DestReceiver* dest,
                     QueryCompletion* completion) {
    const Node* utility = statement->utilityStmt;
    // Counted before the LISTEN itself runs: a LISTEN that then fails only
    // leaves the count too high.
    if (IsA(utility, ListenStmt)) start_counting();
    const bool unlistens_all =
        (IsA(utility, UnlistenStmt) && castNode(UnlistenStmt, utility)->conditionname == nullptr) ||
        (IsA(utility, DiscardStmt) && castNode(DiscardStmt, utility)->target == DISCARD_ALL);
    if (previous_process_utility != nullptr)
        previous_process_utility(statement, query, read_only_tree, context, params, environment, dest, completion);
    else
        standard_ProcessUtility(statement, query, read_only_tree, context, params, environment, dest, completion);
    // Like UNLISTEN itself, the session stops listening when the transaction commits.
    if (unlistens_all && counted_slot >= 0) {
        const int level = GetCurrentTransactionNestLevel();
        if (stop_at_commit_level == 0 || level < stop_at_commit_level) stop_at_commit_level = level;
    }
}

}  // namespace

void listeners_request_shmem() { RequestAddinShmemSpace(listeners_size()); }

void listeners_startup_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared_listeners = static_cast<Listeners*>(ShmemInitStruct("pg_causal listeners", listeners_size(), &found));
    if (!found) {
        for (auto& sessions : shared_listeners->sessions) pg_atomic_init_u32(&sessions, 0);
        shared_listeners->processes = process_count();
        for (int i = 0; i < shared_listeners->processes; ++i)
            pg_atomic_init_u32(&shared_listeners->unannounced[i], InvalidTransactionId);
    }
    LWLockRelease(AddinShmemInitLock);
}

void listeners_install_hook() {
    previous_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
}

bool someone_may_listen() {
    if (shared_listeners == nullptr || MyProc == nullptr || MyProc->pgprocno >= shared_listeners->processes)
        return true;
    if (!marked) {
        static bool registered = false;
        if (!registered) {
            RegisterXactCallback(clear_mark, nullptr);
            registered = true;
        }
        pg_atomic_write_u32(&shared_listeners->unannounced[MyProc->pgprocno], GetTopTransactionId());
        marked = true;
        // Pairs with wait_for_unannounced_writers.
        pg_memory_barrier();
    }
    return pg_atomic_read_u32(&shared_listeners->sessions[slot_of(MyDatabaseId)]) > 0;
}

}  // namespace causal::pg
