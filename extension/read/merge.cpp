// causal.merge(), the aggregate, and causal.catch_up(): the glue between
// PostgreSQL and the core merge (src/core/merge.hpp).
//
// The transition state is a merge::Input built in the aggregate's memory
// context through a MemoryContextResource, so PostgreSQL accounts for it (a
// hash aggregate sees its size) and frees it with the query, error or not.

#include <cstring>
#include <new>
#include <optional>
#include <string_view>
#include <vector>

#include "core/merge.hpp"
#include "read/conversation.hpp"
#include "infra/guard.hpp"
#include "hlc/hlc_datum.hpp"
#include "infra/memory.hpp"
#include "infra/postgres.hpp"
#include "mesh/regions.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "table/stamps.hpp"
#include "infra/sqlstates.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_operator.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "executor/executor.h"
#include "utils/array.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/reltrigger.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"
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

// The hlcs of a causal.hlc[] value (deps, or what a client saw), in place.
struct HlcSpan {
    const Hlc* values = nullptr;
    size_t count = 0;
};

// causal.hlc is fixed-length and double-aligned at 16 bytes, so an array
// without NULLs holds the values back to back: no deconstruct_array copy.
HlcSpan hlcs_of(ArrayType* array, const char* what = "a message's deps") {
    if (array_contains_nulls(array))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not contain NULL", what)));
    return {reinterpret_cast<const Hlc*>(ARR_DATA_PTR(array)),
            static_cast<size_t>(ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)))};
}

std::optional<std::string_view> text_view(Datum value) {
    text* t = DatumGetTextPP(value);
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

// Adds one message copy; NULL msg_id or hlc rows are skipped, as aggregates
// skip NULL input, and NULL deps are no deps.
void add_copy(merge::Input& input, const merge::MsgId& id, Datum hlc, bool hlc_null, Datum deps, bool deps_null,
              Datum region, bool region_null, Datum epoch, bool epoch_null) {
    if (hlc_null) return;
    HlcSpan dep_values = deps_null ? HlcSpan{} : hlcs_of(DatumGetArrayTypeP(deps));
    std::optional<std::string_view> region_name = region_null ? std::nullopt : text_view(region);
    std::optional<int64_t> epoch_value =
        epoch_null ? std::nullopt : std::optional<int64_t>(DatumGetInt64(epoch));
    const Hlc* value = reinterpret_cast<const Hlc*>(DatumGetPointer(hlc));
    cpp_guard([&] { input.add(id, *value, dep_values.values, dep_values.count, region_name, epoch_value); });
}

}  // namespace

void add_row(merge::Input& input, Datum msg_id, bool msg_id_null, Datum hlc, bool hlc_null, Datum deps,
             bool deps_null, Datum region, bool region_null, Datum epoch, bool epoch_null, Datum copies,
             bool copies_null) {
    if (msg_id_null) return;
    merge::MsgId id;
    std::memcpy(id.data(), DatumGetUUIDP(msg_id)->data, id.size());
    add_copy(input, id, hlc, hlc_null, deps, deps_null, region, region_null, epoch, epoch_null);
    if (copies_null) return;
    HeapTupleHeader* elements = nullptr;
    const int n = copy_elements(copies, &elements);
    for (int i = 0; i < n; ++i) {
        if (elements[i] == nullptr) continue;
        bool null[4];
        Datum value[4];
        for (int f = 0; f < 4; ++f) value[f] = GetAttributeByNum(elements[i], static_cast<AttrNumber>(f + 1), &null[f]);
        add_copy(input, id, value[0], null[0], value[1], null[1], value[2], null[2], value[3], null[3]);
    }
}

merge::History* merge_in(const merge::Input& input, FenceList fences, WorkArea area) {
    return cpp_guard([&] {
        std::vector<merge::Fence> list(fences.fences, fences.fences + fences.count);
        return make_in<merge::History>(*area.memory, input.merge(list, area.memory));
    });
}

WorkArea new_work_area() {
    MemoryContext context = AllocSetContextCreate(CurrentMemoryContext, "pg_causal merge", ALLOCSET_DEFAULT_SIZES);
    void* place = MemoryContextAlloc(context, sizeof(MemoryContextResource));
    return {context, new (place) MemoryContextResource(context)};
}

namespace {

// The values of one causal.merged row, pointing into the history.
void merged_row(const merge::History& history, uint32_t index, Datum (&values)[6]) {
    const merge::Message& m = history.messages()[index];
    values[0] = Int64GetDatum(static_cast<int64>(index) + 1);
    values[1] = PointerGetDatum(m.msg_id.data());
    values[2] = PointerGetDatum(&m.hlc);
    values[3] = BoolGetDatum(m.delivered);
    values[4] = BoolGetDatum(m.concurrent);
    values[5] = BoolGetDatum(m.orphan);
}

// What the final function needs once per query: the type it builds, and the
// fences as the query's snapshot shows them (every group sees the same).
struct FinalSetup {
    Oid row_type;
    TupleDesc desc;
    FenceList fences;
};

const FinalSetup& final_setup(FunctionCallInfo fcinfo) {
    if (fcinfo->flinfo->fn_extra == nullptr) {
        MemoryContext query = fcinfo->flinfo->fn_mcxt;
        Oid row_type = get_element_type(get_func_rettype(fcinfo->flinfo->fn_oid));
        auto* setup = static_cast<FinalSetup*>(MemoryContextAlloc(query, sizeof(FinalSetup)));
        setup->row_type = row_type;
        MemoryContext old = MemoryContextSwitchTo(query);
        setup->desc = lookup_rowtype_tupdesc_copy(row_type, -1);
        MemoryContextSwitchTo(old);
        setup->fences = read_fences_into(query, false);
        fcinfo->flinfo->fn_extra = setup;
    }
    return *static_cast<const FinalSetup*>(fcinfo->flinfo->fn_extra);
}

Datum history_array(const merge::History& history, const FinalSetup& type) {
    const size_t n = history.messages().size();
    if (n == 0) return PointerGetDatum(construct_empty_array(type.row_type));
    auto* rows = static_cast<Datum*>(palloc_extended(n * sizeof(Datum), MCXT_ALLOC_HUGE));
    Datum values[6];
    bool nulls[6] = {false, false, false, false, false, false};
    for (size_t i = 0; i < n; ++i) {
        merged_row(history, static_cast<uint32_t>(i), values);
        // heap_form_tuple stamps the row type: the tuple is a datum as is.
        rows[i] = HeapTupleGetDatum(heap_form_tuple(type.desc, values, nulls));
    }
    return PointerGetDatum(construct_array(rows, static_cast<int>(n), type.row_type, -1, false,
                                           TYPALIGN_DOUBLE));
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
    const FinalSetup& setup = final_setup(fcinfo);
    // An empty group has an empty history, not an unknown one.
    if (PG_ARGISNULL(0)) PG_RETURN_DATUM(PointerGetDatum(construct_empty_array(setup.row_type)));
    WorkArea area = new_work_area();
    merge::History* history = merge_in(state_arg(fcinfo, 0)->input, setup.fences, area);
    Datum result = history_array(*history, setup);
    MemoryContextDelete(area.context);
    PG_RETURN_DATUM(result);
}

namespace causal::pg {
namespace {

[[noreturn]] void not_a_message_table(Relation rel, const char* why) {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("table %s is not a causal message table", RelationGetRelationName(rel)),
                    errdetail("%s", why), errhint("causal.enable() makes it one.")));
}

}  // namespace

// The table must be what causal.enable() made: its trigger (pg_causal's own
// function, not one of the same name) names the conversation column, and
// pg_causal's columns have pg_causal's types. The lock is kept until the end
// of the transaction, so no ALTER can change them before the read.
ConversationQuery conversation_query(Oid relid, const char* conversation, Oid schema) {
    // The privilege first: a role that may not read the table must not be
    // able to queue for a lock on it either.
    bool missing = false;
    const AclResult acl = pg_class_aclcheck_ext(relid, GetUserId(), ACL_SELECT, &missing);
    if (missing) ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    if (acl != ACLCHECK_OK) aclcheck_error(acl, OBJECT_TABLE, get_rel_name(relid));
    Relation rel = try_table_open(relid, AccessShareLock);
    if (rel == nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    const char* column = nullptr;
    for (int i = 0; rel->trigdesc != nullptr && i < rel->trigdesc->numtriggers; ++i) {
        const Trigger& trigger = rel->trigdesc->triggers[i];
        if (std::strcmp(trigger.tgname, "causal_message") == 0 && trigger.tgnargs >= 1 &&
            get_func_namespace(trigger.tgfoid) == schema &&
            std::strcmp(get_func_name(trigger.tgfoid), "message_trigger") == 0)
            column = trigger.tgargs[0];
    }
    if (column == nullptr) not_a_message_table(rel, "It has no causal_message trigger of pg_causal's.");
    const Oid hlc_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("hlc"), ObjectIdGetDatum(schema));
    const Oid hlc_array = get_array_type(hlc_type);
    const struct {
        const char* name;
        Oid type;
    } expected[] = {{"msg_id", UUIDOID},
                    {"hlc", hlc_type},
                    {"deps", hlc_array},
                    {"crdb_region", TEXTOID},
                    {"epoch", INT8OID},
                    {"copies", get_array_type(GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("copy"),
                                                              ObjectIdGetDatum(schema)))}};
    TupleDesc desc = RelationGetDescr(rel);
    for (const auto& e : expected) {
        const int attnum = SPI_fnumber(desc, e.name);
        if (attnum <= 0) not_a_message_table(rel, psprintf("It has no column \"%s\".", e.name));
        if (TupleDescAttr(desc, attnum - 1)->atttypid != e.type)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("column \"%s\" of table %s has type %s, not %s", e.name,
                                   RelationGetRelationName(rel),
                                   format_type_be(TupleDescAttr(desc, attnum - 1)->atttypid), format_type_be(e.type))));
    }
    const int key_attnum = SPI_fnumber(desc, column);
    if (key_attnum <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("conversation column \"%s\" of table %s does not exist", column,
                               RelationGetRelationName(rel))));
    const Form_pg_attribute key = TupleDescAttr(desc, key_attnum - 1);

    // The key is converted as the column's own type with its typmod (char(8)
    // stays 8 wide), and compared with that type's own equality operator,
    // named by schema: nothing on the caller's search_path takes part.
    Oid input = InvalidOid, ioparam = InvalidOid;
    getTypeInputInfo(key->atttypid, &input, &ioparam);
    Datum value = OidInputFunctionCall(input, const_cast<char*>(conversation), ioparam, key->atttypmod);
    TypeCacheEntry* type = lookup_type_cache(key->atttypid, TYPECACHE_EQ_OPR);
    if (!OidIsValid(type->eq_opr))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
                        errmsg("conversation column \"%s\" has type %s, which has no equality operator", column,
                               format_type_be(key->atttypid))));
    HeapTuple opr = SearchSysCache1(OPEROID, ObjectIdGetDatum(type->eq_opr));
    if (!HeapTupleIsValid(opr)) elog(ERROR, "cache lookup failed for operator %u", type->eq_opr);
    const auto* eq = reinterpret_cast<Form_pg_operator>(GETSTRUCT(opr));
    char* sql = psprintf(
        "SELECT msg_id, hlc, deps, crdb_region, epoch, copies FROM %s WHERE %s OPERATOR(%s.%s) $1",
        quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)),
        quote_identifier(column), quote_identifier(get_namespace_name(eq->oprnamespace)), NameStr(eq->oprname));
    // A cursor reads the index range (conversation, hlc) at or after it; the
    // rows below it with a later copy a client named only when one is named.
    // The hlc operators are pg_catalog's, as the built-in types' are.
    char* tail_sql = psprintf("%s AND hlc OPERATOR(pg_catalog.>=) $2", sql);
    char* named_sql = psprintf(
        "%s AND hlc OPERATOR(pg_catalog.<) $2 AND EXISTS (SELECT FROM pg_catalog.unnest(copies) c"
        " WHERE (c).hlc OPERATOR(pg_catalog.=) ANY ($3))",
        sql);
    char* rows_sql = psprintf(
        "SELECT r.msg_id, r.hlc, r.deps, r.crdb_region, r.epoch, r.copies, r FROM %s r WHERE r.%s OPERATOR(%s.%s) $1",
        quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)),
        quote_identifier(column), quote_identifier(get_namespace_name(eq->oprnamespace)), NameStr(eq->oprname));
    ReleaseSysCache(opr);
    ConversationQuery query{sql, tail_sql, named_sql, rows_sql, key->atttypid, value, hlc_type,
                            static_cast<AttrNumber>(key_attnum), type->eq_opr, key->attcollation};
    table_close(rel, NoLock);
    return query;
}

namespace {

// Adds the rows `sql` selects (msg_id, hlc, deps, crdb_region, epoch,
// copies) to `input`; SPI connected. Planned once per backend: a client
// catching up calls this often, and planning would cost more than reading.
void add_rows(merge::Input& input, const char* sql, int nargs, Oid* types, Datum* args) {
    spi_run_plan(kept_plan(sql, nargs, types), SPI_OK_SELECT, args, nullptr, false, sql);
    for (uint64 i = 0; i < SPI_processed; ++i) {
        HeapTuple row = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool null[6];
        Datum value[6];
        for (int c = 0; c < 6; ++c) value[c] = SPI_getbinval(row, desc, c + 1, &null[c]);
        add_row(input, value[0], null[0], value[1], null[1], value[2], null[2], value[3], null[3], value[4], null[4],
                value[5], null[5]);
    }
}

// What a client that saw `seen` (and, with a cursor, everything below
// `since`) has missed, read with a new snapshot (in READ COMMITTED) into
// `area`: the whole conversation, or with a cursor the tail at or after it.
// A seen hlc the tail lacks may name a later copy of a message headed below
// the cursor; those rows are read too, and the tail merged again, so that
// their past counts as seen.
struct Answer {
    merge::History* history;
    merge::CatchUp* result;
};

Answer read_conversation(const ConversationQuery& query, const HlcSpan& seen, const Hlc* since, WorkArea area) {
    merge::Input* input = cpp_guard([&] { return make_in<merge::Input>(*area.memory, area.memory); });
    Oid types[3] = {query.key_type, query.hlc_type, get_array_type(query.hlc_type)};
    Datum args[3] = {query.key, since ? hlc_datum(*since) : Datum(0), Datum(0)};
    const std::optional<Hlc> cursor = since ? std::optional<Hlc>(*since) : std::nullopt;
    SPI_connect();
    add_rows(*input, since ? query.tail_sql : query.sql, since ? 2 : 1, types, args);
    const FenceList fences = read_fences_into(area.context, true);
    Answer answer;
    for (int pass = 0;; ++pass) {
        answer.history = cpp_guard([&] {
            std::vector<merge::Fence> list(fences.fences, fences.fences + fences.count);
            return make_in<merge::History>(*area.memory, input->merge(list, area.memory, cursor));
        });
        answer.result = cpp_guard([&] {
            return make_in<merge::CatchUp>(*area.memory,
                                           answer.history->catch_up(seen.values, seen.count, area.memory, cursor));
        });
        if (!since || pass > 0 || answer.result->not_here.empty()) break;
        auto* names = static_cast<Datum*>(palloc(sizeof(Datum) * answer.result->not_here.size()));
        for (size_t i = 0; i < answer.result->not_here.size(); ++i) names[i] = hlc_datum(answer.result->not_here[i]);
        args[2] = PointerGetDatum(construct_array(names, static_cast<int>(answer.result->not_here.size()),
                                                  query.hlc_type, sizeof(Hlc), false, TYPALIGN_DOUBLE));
        add_rows(*input, query.named_sql, 3, types, args);
    }
    SPI_finish();
    return answer;
}

// The first few of `values`, for a message.
char* list_hlcs(const std::pmr::vector<Hlc>& values) {
    StringInfoData out;
    initStringInfo(&out);
    char text[kHlcTextMax];
    for (size_t i = 0; i < values.size() && i < 3; ++i) {
        format(values[i], text);
        appendStringInfo(&out, "%s%s", i ? ", " : "", text);
    }
    if (values.size() > 3) appendStringInfoString(&out, ", ...");
    return out.data;
}

// 5C003: never a silent gap.
[[noreturn]] void raise_behind(const merge::CatchUp& result, const char* conversation, bool can_wait) {
    char* not_here = list_hlcs(result.not_here);
    char* not_delivered = list_hlcs(result.not_delivered);
    const size_t missing = result.not_here.size();
    const size_t waiting = result.not_delivered.size();
    const char* live = own_region_state().live_region;
    ereport(ERROR,
            (errcode(kRegionBehind),
             errmsg("region \"%s\" has not yet received everything the client saw in conversation \"%s\"",
                    region_setting ? region_setting : "", conversation),
             missing > 0 && waiting > 0
                 ? errdetail("%zu seen message(s) have not arrived (%s); %zu arrived but wait for a "
                             "dependency (%s).", missing, not_here, waiting, not_delivered)
             : missing > 0 ? errdetail("%zu seen message(s) have not arrived: %s.", missing, not_here)
                           : errdetail("%zu seen message(s) arrived but wait for a dependency: %s.",
                                       waiting, not_delivered),
             !can_wait ? errhint("This transaction's snapshot cannot see new rows: retry in a new "
                                 "transaction, or read from another region.")
             : live != nullptr
                 ? errhint("Replication is still delivering them: retry, pass wait_for, or read from "
                           "region \"%s\".", live)
                 : errhint("Replication is still delivering them: retry, or pass wait_for.")));
    pg_unreachable();
}

// Saturating: a wait of years is a wait of years, not an overflow.
int64 interval_microseconds(const Interval* span) {
    const double us = static_cast<double>(span->time) + static_cast<double>(span->day) * USECS_PER_DAY +
                      static_cast<double>(span->month) * DAYS_PER_MONTH * USECS_PER_DAY;
    constexpr double kMax = static_cast<double>(PG_INT64_MAX / 4);
    return us >= kMax ? static_cast<int64>(kMax) : static_cast<int64>(us);
}

}  // namespace
}  // namespace causal::pg

CAUSAL_FUNCTION(catch_up) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("causal.catch_up needs a message table and a conversation")));
    const Oid relid = PG_GETARG_OID(0);
    char* conversation = TextDatumGetCString(PG_GETARG_DATUM(1));
    // NULL seen: the client saw nothing, and gets everything.
    HlcSpan seen = PG_ARGISNULL(2) ? HlcSpan{} : hlcs_of(PG_GETARG_ARRAYTYPE_P(2), "seen");
    const int64 wait_us = PG_ARGISNULL(3) ? 0 : interval_microseconds(PG_GETARG_INTERVAL_P(3));
    if (wait_us < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("wait_for must not be negative")));
    // A cursor: the client saw every message with a copy below it.
    const Hlc* since = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? arg_hlc(fcinfo, 4) : nullptr;

    const ConversationQuery query = conversation_query(relid, conversation, get_func_namespace(fcinfo->flinfo->fn_oid));
    // Waiting helps only if each read takes a new snapshot.
    const bool can_wait = !IsolationUsesXactSnapshot();
    const TimestampTz deadline = GetCurrentTimestamp() + wait_us;
    WorkArea area = new_work_area();
    for (;;) {
        const Answer answer = read_conversation(query, seen, since, area);
        merge::History* history = answer.history;
        merge::CatchUp* result = answer.result;
        if (!result->behind()) {
            InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
            auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            Datum values[6];
            bool nulls[6] = {false, false, false, false, false, false};
            for (uint32_t index : result->missed) {
                merged_row(*history, index, values);
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
            MemoryContextDelete(area.context);
            return Datum(0);
        }
        if (!can_wait || GetCurrentTimestamp() >= deadline)
            raise_behind(*result, conversation, can_wait);
        MemoryContextDelete(area.context);
        area = new_work_area();
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}
