#include "listeners.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/snapmgr.h"
}

#include <vector>

namespace causal::pg {

namespace {

// Databases hash to slots; two that share one only announce more than they
// need to.
constexpr int kSlots = 256;

struct Listeners {
    pg_atomic_uint32 sessions[kSlots];
};
Listeners* shared_listeners = nullptr;

// The slot this session counts itself in, -1 while it does not.
int counted_slot = -1;
// UNLISTEN * or DISCARD ALL ran in this transaction: stop counting if it commits.
bool stop_at_commit = false;

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
            if (stop_at_commit) stop_counting();
            stop_at_commit = false;
            break;
        case XACT_EVENT_ABORT:
            stop_at_commit = false;
            break;
        default:
            break;
    }
}

// A writer that read the count before this session raised it has an xid and
// will not announce; wait for every such transaction, so that whatever it
// wrote is in the snapshot the listener takes after its LISTEN. The count was
// raised (a full barrier) before the running xids are read; the writer reads
// the count after its xid is set (someone_may_listen): one of the two sees
// the other. A snapshot lists the running xids below its xmax; every xid
// from there to the next one to be assigned has not ended yet.
void wait_for_running_writers() {
    const Snapshot snapshot = GetLatestSnapshot();
    std::vector<TransactionId> running(snapshot->xip, snapshot->xip + snapshot->xcnt);
    const TransactionId next = ReadNextTransactionId();
    for (TransactionId xid = snapshot->xmax; TransactionIdPrecedes(xid, next);) {
        running.push_back(xid);
        TransactionIdAdvance(xid);
    }
    for (const TransactionId xid : running)
        if (!TransactionIdIsCurrentTransactionId(xid)) XactLockTableWait(xid, nullptr, nullptr, XLTW_None);
}

void start_counting() {
    stop_at_commit = false;
    if (counted_slot >= 0) return;
    static bool registered = false;
    if (!registered) {
        before_shmem_exit(stop_counting_at_exit, 0);
        RegisterXactCallback(settle_at_transaction_end, nullptr);
        registered = true;
    }
    counted_slot = slot_of(MyDatabaseId);
    pg_atomic_fetch_add_u32(&shared_listeners->sessions[counted_slot], 1);
    wait_for_running_writers();
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
    if (unlistens_all && counted_slot >= 0) stop_at_commit = true;
}

}  // namespace

void listeners_request_shmem() { RequestAddinShmemSpace(sizeof(Listeners)); }

void listeners_startup_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared_listeners = static_cast<Listeners*>(ShmemInitStruct("pg_causal listeners", sizeof(Listeners), &found));
    if (!found)
        for (auto& sessions : shared_listeners->sessions) pg_atomic_init_u32(&sessions, 0);
    LWLockRelease(AddinShmemInitLock);
}

void listeners_install_hook() {
    previous_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
}

bool someone_may_listen() {
    if (shared_listeners == nullptr) return true;
    // Pairs with start_counting: this transaction's xid is visible to a
    // listener's snapshot before the count is read.
    pg_memory_barrier();
    return pg_atomic_read_u32(&shared_listeners->sessions[slot_of(MyDatabaseId)]) > 0;
}

}  // namespace causal::pg
