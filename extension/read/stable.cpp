#include "read/stable.hpp"

#include "hlc/clock.hpp"
#include "hlc/hlc_datum.hpp"
#include "infra/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "port/atomics.h"
#include "storage/proc.h"
#include "storage/shmem.h"
}

namespace causal::pg {

namespace {

// One mark per process that can write: the clock's value just before its
// transaction's first stamp, 0 when it has none unfinished.
struct Marks {
    int count;
    pg_atomic_uint64 marks[FLEXIBLE_ARRAY_MEMBER];
};
Marks* shared_marks = nullptr;
bool marked = false;

// No slots for prepared transactions: one that stamped is refused.
int mark_count() { return MaxBackends + NUM_AUXILIARY_PROCS; }

Size marks_size() { return add_size(offsetof(Marks, marks), mul_size(mark_count(), sizeof(pg_atomic_uint64))); }

void clear_mark(XactEvent event, void*) {
    if (!marked) return;
    switch (event) {
        // A mark that outlived the session would hold every cursor in the
        // mesh down until someone ends the prepared transaction, and
        // max_prepared_transactions is 0 unless a DBA raised it: refused.
        case XACT_EVENT_PRE_PREPARE:
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("cannot PREPARE a transaction that stamped a causal message"),
                            errdetail("Its INSERT or DELETE holds the stable point (causal.stable_hlc()) down until "
                                      "it ends, and a prepared transaction may never end."),
                            errhint("Commit it instead; write to message tables outside two-phase transactions.")));
            break;
        // After the commit record: a peer that receives a later heartbeat
        // has this transaction's messages.
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            pg_atomic_write_u64(&shared_marks->marks[MyProc->pgprocno], 0);
            marked = false;
            break;
        default:
            break;
    }
}

}  // namespace

void stable_request_shmem() { RequestAddinShmemSpace(marks_size()); }

void stable_startup_shmem() {
    bool found = false;
    const Size size = marks_size();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared_marks = static_cast<Marks*>(ShmemInitStruct("pg_causal stable marks", size, &found));
    if (!found) {
        shared_marks->count = mark_count();
        for (int i = 0; i < shared_marks->count; ++i) pg_atomic_init_u64(&shared_marks->marks[i], 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

void note_unfinished_stamp() {
    if (shared_marks == nullptr || marked || MyProc == nullptr || MyProc->pgprocno >= shared_marks->count) return;
    static bool registered = false;
    if (!registered) {
        RegisterXactCallback(clear_mark, nullptr);
        registered = true;
    }
    // The mark before the stamp, with a full barrier between: a reader that
    // misses the mark read the clock before this stamp was taken, so the
    // stamp is above what it read (local_stable pairs with this).
    pg_atomic_write_u64(&shared_marks->marks[MyProc->pgprocno], clock_last_wall());
    pg_memory_barrier();
    marked = true;
}

Hlc local_stable() {
    Hlc point;
    point.node = require_node_id();
    // A tick, not the last value issued: an idle region's point then still
    // moves on with time, and so does every cursor that waits on it.
    uint64_t least = clock_now().wall;
    pg_memory_barrier();
    if (shared_marks != nullptr)
        for (int i = 0; i < shared_marks->count; ++i) {
            const uint64_t mark = pg_atomic_read_u64(&shared_marks->marks[i]);
            if (mark != 0 && mark < least) least = mark;
        }
    // Every later stamp is above the tick and every unfinished one above
    // its mark: the point just after `least` is stable.
    point.wall = least + 1;
    return point;
}

}  // namespace causal::pg

CAUSAL_FUNCTION(local_stable) {
    using namespace causal::pg;
    return hlc_datum(local_stable());
}
