#include "table/store.hpp"

extern "C" {
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/rel.h"
}

namespace causal::pg {

namespace {

// An executor state for one row of `rel`, as PostgreSQL's apply worker
// makes one (worker.c: create_edata_for_relation), with the indexes open.
struct RowExecutor {
    EState* estate;
    ResultRelInfo* info;
};

RowExecutor begin_row(Relation rel) {
    // What this transaction wrote before is visible to the row's triggers
    // and constraints, and the row to what follows it (SPI does the same).
    CommandCounterIncrement();
    RowExecutor e;
    e.estate = CreateExecutorState();
    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(rel);
    rte->relkind = rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    ExecInitRangeTable(e.estate, list_make1(rte));
    e.info = makeNode(ResultRelInfo);
    InitResultRelInfo(e.info, rel, 1, nullptr, 0);
    // Where ExecGetTriggerResultRel() finds it; the relation is the
    // caller's, so it is not closed with the state.
    e.estate->es_opened_result_relations = lappend(e.estate->es_opened_result_relations, e.info);
    e.estate->es_output_cid = GetCurrentCommandId(true);
    ExecOpenIndices(e.info, false);
    AfterTriggerBeginQuery();
    return e;
}

void end_row(RowExecutor& e) {
    AfterTriggerEndQuery(e.estate);
    ExecCloseIndices(e.info);
    ExecResetTupleTable(e.estate->es_tupleTable, false);
    FreeExecutorState(e.estate);
    CommandCounterIncrement();
}

TupleTableSlot* slot_of(RowExecutor& e, Relation rel, HeapTuple row) {
    TupleTableSlot* slot = ExecInitExtraTupleSlot(e.estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
    ExecStoreHeapTuple(row, slot, false);
    return slot;
}

}  // namespace

void store_insert(Relation rel, HeapTuple row) {
    RowExecutor e = begin_row(rel);
    ExecSimpleRelationInsert(e.info, e.estate, slot_of(e, rel, row));
    end_row(e);
}

bool lock_stored(Relation rel, AttrNumber key_attnum, Datum key, TupleTableSlot* out) {
    const Oid index = RelationGetReplicaIndex(rel);
    if (!OidIsValid(index))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the replica identity of \"%s\" is not its msg_id index", RelationGetRelationName(rel)),
                        errhint("Run causal.enable() on the table again.")));
    // A row the statement running now stored (the apply worker's own insert
    // of an earlier copy) can be locked only from a later command.
    CommandCounterIncrement();
    TupleTableSlot* search = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
    ExecClearTuple(search);
    for (int i = 0; i < search->tts_tupleDescriptor->natts; ++i) {
        search->tts_values[i] = Datum(0);
        search->tts_isnull[i] = true;
    }
    search->tts_values[key_attnum - 1] = key;
    search->tts_isnull[key_attnum - 1] = false;
    ExecStoreVirtualTuple(search);
    const bool found = RelationFindReplTupleByIndex(rel, index, LockTupleExclusive, search, out);
    ExecDropSingleTupleTableSlot(search);
    return found;
}

void store_update(Relation rel, TupleTableSlot* locked, HeapTuple row) {
    RowExecutor e = begin_row(rel);
    EPQState epq;
    EvalPlanQualInit(&epq, e.estate, nullptr, NIL, -1);
    ExecSimpleRelationUpdate(e.info, e.estate, &epq, locked, slot_of(e, rel, row));
    EvalPlanQualEnd(&epq);
    end_row(e);
}

}  // namespace causal::pg
