#include "table/direct_store.hpp"

#include "table/table_shape.hpp"

#include <cstring>

extern "C" {
#include "access/genam.h"
#include "catalog/pg_index.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "nodes/pg_list.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/relcache.h"
}

namespace causal::pg {

namespace {

// The last table asked about; a change to any table's relcache entry (an
// index, a trigger, a constraint) forgets it.
struct Verdict {
    bool valid = false;
    Oid relid = InvalidOid;
    bool direct = false;
};
Verdict verdict;

void forget(Datum, Oid relid) {
    if (relid == InvalidOid || relid == verdict.relid) verdict.valid = false;
}

bool ours(Oid function, Oid trigger_function) {
    if (get_func_namespace(function) != get_func_namespace(trigger_function)) return false;
    char* name = get_func_name(function);
    return name != nullptr && (std::strcmp(name, "message_trigger") == 0 || std::strcmp(name, "message_stored") == 0);
}

// The worker inserts new rows itself; the copy rule rewrites stored ones
// with an UPDATE, outside any subtransaction.
bool only_our_row_triggers(Relation rel, Oid trigger_function) {
    if (rel->trigdesc == nullptr) return true;
    for (int i = 0; i < rel->trigdesc->numtriggers; ++i) {
        const Trigger& trigger = rel->trigdesc->triggers[i];
        const bool fires_in_worker = trigger.tgenabled == TRIGGER_FIRES_ALWAYS ||
                                     trigger.tgenabled == TRIGGER_FIRES_ON_REPLICA;
        const bool on_write = TRIGGER_FOR_INSERT(trigger.tgtype) || TRIGGER_FOR_UPDATE(trigger.tgtype);
        if (fires_in_worker && on_write && !ours(trigger.tgfoid, trigger_function)) return false;
    }
    return true;
}

// `deleted_at IS NOT NULL`, the predicate of the index of deletions that
// enable() makes: PostgreSQL's own test, which no row can make fail.
bool only_tombstones(const Firing& t, Relation index) {
    List* predicate = RelationGetIndexPredicate(index);
    if (list_length(predicate) != 1 || !IsA(linitial(predicate), NullTest)) return false;
    const auto* test = static_cast<const NullTest*>(linitial(predicate));
    return test->nulltesttype == IS_NOT_NULL && !test->argisrow && test->arg != nullptr && IsA(test->arg, Var) &&
           reinterpret_cast<const Var*>(test->arg)->varattno == t.columns.deleted_at;
}

// (causal.latest_stamp(hlc, deleted_at, copies), msg_id), the index the
// relay pages along: pg_causal's function over its own columns, which
// fails on no row.
bool stamp_index(const Firing& t, Relation index, Oid trigger_function) {
    const Form_pg_index form = index->rd_index;
    if (form->indnatts != 2 || form->indkey.values[0] != 0 || form->indkey.values[1] != t.columns.msg_id) return false;
    List* expressions = RelationGetIndexExpressions(index);
    if (list_length(expressions) != 1 || !IsA(linitial(expressions), FuncExpr)) return false;
    const auto* call = static_cast<const FuncExpr*>(linitial(expressions));
    if (get_func_namespace(call->funcid) != get_func_namespace(trigger_function)) return false;
    const char* name = get_func_name(call->funcid);
    if (name == nullptr || std::strcmp(name, "latest_stamp") != 0 || list_length(call->args) != 3) return false;
    const AttrNumber expected[3] = {t.columns.hlc, t.columns.deleted_at, t.columns.copies};
    for (int i = 0; i < 3; ++i) {
        const Node* arg = static_cast<const Node*>(list_nth(call->args, i));
        if (!IsA(arg, Var) || reinterpret_cast<const Var*>(arg)->varattno != expected[i]) return false;
    }
    return true;
}

bool plain_index(const Firing& t, Oid index_oid, Oid trigger_function) {
    Relation index = index_open(index_oid, AccessShareLock);
    const Form_pg_index form = index->rd_index;
    const bool has_predicate = !heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, nullptr);
    if (!heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, nullptr)) {
        const bool ours = !has_predicate && !form->indisunique && !form->indisexclusion &&
                          stamp_index(t, index, trigger_function);
        index_close(index, AccessShareLock);
        return ours;
    }
    bool plain = has_predicate ? only_tombstones(t, index) : true;
    plain = plain && !form->indisexclusion;
    if (plain && form->indisunique && index_oid != RelationGetReplicaIndex(t.rel)) plain = false;
    for (int i = 0; plain && i < form->indnatts; ++i) {
        const AttrNumber attnum = form->indkey.values[i];
        if (attnum == t.columns.conversation) continue;
        if (attnum <= 0 || TupleDescAttr(t.desc, attnum - 1)->attlen <= 0) plain = false;
    }
    index_close(index, AccessShareLock);
    return plain;
}

bool decide(const Firing& t, Oid trigger_function) {
    const Relation rel = t.rel;
    if (rel->rd_rel->relkind != RELKIND_RELATION) return false;
    // Outside the shape, every row goes through pg_causal's store as the
    // owner (a table a superuser altered, or one from before 0.4.0).
    if (owners_part_problem(RelationGetRelid(rel))) return false;
    const TupleConstr* constr = rel->rd_att->constr;
    if (constr != nullptr && (constr->num_check > 0 || constr->has_generated_stored)) return false;
    if (!only_our_row_triggers(rel, trigger_function)) return false;
    List* indexes = RelationGetIndexList(rel);
    bool plain = true;
    ListCell* cell;
    foreach (cell, indexes)
        if (plain && !plain_index(t, lfirst_oid(cell), trigger_function)) plain = false;
    list_free(indexes);
    return plain;
}

}  // namespace

bool table_takes_rows_directly(const Firing& t, Oid trigger_function) {
    static bool registered = false;
    if (!registered) {
        CacheRegisterRelcacheCallback(forget, 0);
        registered = true;
    }
    const Oid relid = RelationGetRelid(t.rel);
    if (!verdict.valid || verdict.relid != relid) {
        verdict.valid = false;
        verdict.relid = relid;
        verdict.direct = decide(t, trigger_function);
        verdict.valid = true;
    }
    return verdict.direct;
}

bool breaks_not_null(const Firing& t, HeapTuple row) {
    const TupleConstr* constr = t.desc->constr;
    if (constr == nullptr || !constr->has_not_null) return false;
    for (int i = 0; i < t.desc->natts; ++i) {
        const Form_pg_attribute attribute = TupleDescAttr(t.desc, i);
        if (attribute->attnotnull && !attribute->attisdropped && heap_attisnull(row, attribute->attnum, t.desc))
            return true;
    }
    return false;
}

}  // namespace causal::pg
