// causal.merge(), the aggregate: the glue between PostgreSQL and the core
// merge (src/core/merge.hpp).
//
// The transition state is a merge::Input built in the aggregate's memory
// context through a MemoryContextResource, so PostgreSQL accounts for it (a
// hash aggregate sees its size) and frees it with the query, error or not.
#include <new>

#include "core/merge.hpp"
#include "infra/guard.hpp"
#include "infra/memory.hpp"
#include "infra/postgres.hpp"
#include "mesh/regions.hpp"
#include "read/conversation.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
}

namespace causal::pg {

namespace {

struct MergeState {
    explicit MergeState(MemoryContext context) : memory(context), input(&memory) {}
    MemoryContextResource memory;
    merge::Input input;
};

MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* function) {
    MemoryContext context = nullptr;
    if (!AggCheckCallContext(fcinfo, &context))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s can only be called by the aggregate causal.merge()", function)));
    return context;
}

MergeState* new_state(MemoryContext context) {
    return new (MemoryContextAlloc(context, sizeof(MergeState))) MergeState(context);
}

MergeState* state_arg(FunctionCallInfo fcinfo, int n) {
    return reinterpret_cast<MergeState*>(PG_GETARG_POINTER(n));
}

// What the final function needs once per query: the type it builds, the
// fences as the query's snapshot shows them (every group sees the same),
// and whether the five-argument form's deprecation was said.
struct FinalSetup {
    Oid row_type;
    TupleDesc desc;
    FenceList fences;
    bool warned;
};

FinalSetup& final_setup(FunctionCallInfo fcinfo) {
    if (fcinfo->flinfo->fn_extra == nullptr) {
        MemoryContext query = fcinfo->flinfo->fn_mcxt;
        Oid row_type = get_element_type(get_func_rettype(fcinfo->flinfo->fn_oid));
        auto* setup = static_cast<FinalSetup*>(MemoryContextAlloc(query, sizeof(FinalSetup)));
        setup->row_type = row_type;
        MemoryContext old = MemoryContextSwitchTo(query);
        setup->desc = lookup_rowtype_tupdesc_copy(row_type, -1);
        MemoryContextSwitchTo(old);
        setup->fences = read_fences_into(query, false);
        setup->warned = false;
        fcinfo->flinfo->fn_extra = setup;
    }
    return *static_cast<FinalSetup*>(fcinfo->flinfo->fn_extra);
}

Datum history_array(const merge::History& history, const FinalSetup& type) {
    const size_t n = history.messages().size();
    if (n == 0) return PointerGetDatum(construct_empty_array(type.row_type));
    auto* rows = static_cast<Datum*>(palloc_extended(n * sizeof(Datum), MCXT_ALLOC_HUGE));
    Datum values[kMergedColumns];
    bool nulls[kMergedColumns] = {};
    for (size_t i = 0; i < n; ++i) {
        merged_row(history, static_cast<uint32_t>(i), values);
        // heap_form_tuple stamps the row type: the tuple is a datum as is.
        rows[i] = HeapTupleGetDatum(heap_form_tuple(type.desc, values, nulls));
    }
    return PointerGetDatum(construct_array(rows, static_cast<int>(n), type.row_type, -1, false,
                                           TYPALIGN_DOUBLE));
}

// Once per aggregate in a query: the five-argument form goes in the next
// version. Said by the final function, which one process runs (the
// transition function runs in every parallel worker, each of which would
// say it too); not for a window aggregate, which has no Aggref.
void warn_five_arguments(FunctionCallInfo fcinfo, FinalSetup& setup) {
    if (setup.warned) return;
    setup.warned = true;
    const Aggref* aggref = AggGetAggref(fcinfo);
    if (aggref == nullptr || get_func_nargs(aggref->aggfnoid) != 5) return;
    ereport(WARNING,
            (errcode(ERRCODE_WARNING_DEPRECATED_FEATURE),
             errmsg("causal.merge() with five arguments is deprecated, and goes in the next version of pg_causal"),
             errdetail("It does not see a message's other copies (the copies column), so the replies to a message "
                       "sent twice may stay undelivered; and an ORDER BY inside the call can pick the wrong form."),
             errhint("Pass the copies too: causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies), or NULL for "
                     "rows that have no other copies.")));
}

}  // namespace

}  // namespace causal::pg

using namespace causal;
using namespace causal::pg;

CAUSAL_FUNCTION(merge_transition) {
    MemoryContext context = aggregate_context(fcinfo, "causal.merge_transition()");
    MergeState* state = PG_ARGISNULL(0) ? new_state(context) : state_arg(fcinfo, 0);
    // causal.merge(msg_id, hlc, deps, region, epoch [, copies])
    const bool with_copies = PG_NARGS() > 6;
    add_row(state->input, PG_GETARG_DATUM(1), PG_ARGISNULL(1), PG_GETARG_DATUM(2), PG_ARGISNULL(2),
            PG_GETARG_DATUM(3), PG_ARGISNULL(3), PG_GETARG_DATUM(4), PG_ARGISNULL(4), PG_GETARG_DATUM(5),
            PG_ARGISNULL(5), with_copies ? PG_GETARG_DATUM(6) : Datum(0), !with_copies || PG_ARGISNULL(6));
    PG_RETURN_POINTER(state);
}

CAUSAL_FUNCTION(merge_combine) {
    MemoryContext context = aggregate_context(fcinfo, "causal.merge_combine()");
    if (PG_ARGISNULL(1)) {
        if (PG_ARGISNULL(0)) PG_RETURN_NULL();
        PG_RETURN_POINTER(state_arg(fcinfo, 0));
    }
    // The first state may be NULL; the result must live in the aggregate's context.
    MergeState* state = PG_ARGISNULL(0) ? new_state(context) : state_arg(fcinfo, 0);
    MergeState* other = state_arg(fcinfo, 1);
    cpp_guard([&] { state->input.add_all(other->input); });
    PG_RETURN_POINTER(state);
}

CAUSAL_FUNCTION(merge_serialize) {
    (void)aggregate_context(fcinfo, "causal.merge_serialize()");
    MergeState* state = state_arg(fcinfo, 0);
    const size_t size = state->input.serialized_size();
    if (size > MaxAllocSize - VARHDRSZ)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("causal.merge: a partial state of %zu bytes is too large to pass "
                               "between parallel workers", size),
                        errhint("Merge this group without parallelism: SET max_parallel_workers_per_gather = 0.")));
    auto* out = static_cast<bytea*>(palloc(size + VARHDRSZ));
    SET_VARSIZE(out, size + VARHDRSZ);
    cpp_guard([&] { state->input.serialize(reinterpret_cast<uint8_t*>(VARDATA(out))); });
    PG_RETURN_BYTEA_P(out);
}

// Into the per-call context, which the executor resets: merge_combine copies
// what it keeps into the aggregate's context.
CAUSAL_FUNCTION(merge_deserialize) {
    (void)aggregate_context(fcinfo, "causal.merge_deserialize()");
    bytea* bytes = PG_GETARG_BYTEA_PP(0);
    MergeState* state = new_state(CurrentMemoryContext);
    cpp_guard([&] {
        state->input.deserialize(reinterpret_cast<const uint8_t*>(VARDATA_ANY(bytes)),
                                 VARSIZE_ANY_EXHDR(bytes));
    });
    PG_RETURN_POINTER(state);
}

// READ_ONLY: merging leaves the state as it was, so window frames and
// shared aggregates may go on using it.
CAUSAL_FUNCTION(merge_final) {
    (void)aggregate_context(fcinfo, "causal.merge_final()");
    FinalSetup& setup = final_setup(fcinfo);
    warn_five_arguments(fcinfo, setup);
    // An empty group has an empty history, not an unknown one.
    if (PG_ARGISNULL(0)) PG_RETURN_DATUM(PointerGetDatum(construct_empty_array(setup.row_type)));
    WorkArea area = new_work_area();
    merge::History* history = merge_in(state_arg(fcinfo, 0)->input, setup.fences, area);
    Datum result = history_array(*history, setup);
    MemoryContextDelete(area.context);
    PG_RETURN_DATUM(result);
}

