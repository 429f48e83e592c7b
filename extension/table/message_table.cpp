#include "table/message_table.hpp"

#include "table/table_shape.hpp"

#include <cstring>

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace causal::pg {

namespace {

// The columns of the table written last, kept until the table (or any
// type) changes: the insert path would otherwise look seven names up per row.
struct ColumnCache {
    bool valid = false;
    Oid relid = InvalidOid;
    char conversation[NAMEDATALEN] = "";
    Columns columns = {};
    char problem[256] = "";
    int problem_code = 0;
};
ColumnCache column_cache;

void forget_columns(Datum, Oid relid) {
    if (relid == InvalidOid || relid == column_cache.relid) column_cache.valid = false;
}
void forget_all_columns(Datum, int, uint32) { column_cache.valid = false; }

// Where pg_causal's columns and the conversation are, and whether they
// have pg_causal's types (table_shape.hpp).
void read_columns(Firing& t, const char* conversation) {
    const ShapeProblem p =
        locate_message_columns(t.desc, RelationGetRelationName(t.rel), conversation, &column_cache.columns);
    strlcpy(column_cache.problem, p ? p.problem : "", sizeof column_cache.problem);
    column_cache.problem_code = p.sqlstate;
}

void load_columns(Firing& t, const char* conversation) {
    static bool registered = false;
    if (!registered) {
        CacheRegisterRelcacheCallback(forget_columns, 0);
        CacheRegisterSyscacheCallback(TYPEOID, forget_all_columns, 0);
        registered = true;
    }
    const Oid relid = RelationGetRelid(t.rel);
    if (!column_cache.valid || column_cache.relid != relid ||
        std::strncmp(column_cache.conversation, conversation, NAMEDATALEN) != 0) {
        column_cache.valid = false;
        column_cache.relid = relid;
        strlcpy(column_cache.conversation, conversation, NAMEDATALEN);
        column_cache.columns = {};
        read_columns(t, conversation);
        column_cache.valid = true;
    }
    t.columns = column_cache.columns;
    t.problem = column_cache.problem[0] ? column_cache.problem : nullptr;
    t.problem_code = column_cache.problem_code;
}

}  // namespace

Firing read_trigger(FunctionCallInfo fcinfo, bool before) {
    const char* function = before ? "causal.message_trigger()" : "causal.message_stored()";
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s must be called as a trigger", function)));
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (TRIGGER_FIRED_BEFORE(data->tg_event) != before || !TRIGGER_FIRED_FOR_ROW(data->tg_event) ||
        TRIGGER_FIRED_BY_TRUNCATE(data->tg_event) || (!before && TRIGGER_FIRED_BY_UPDATE(data->tg_event)) ||
        data->tg_trigger->tgnargs != 2)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s is not a trigger as causal.enable() creates it", function),
                        errhint("Run causal.enable() on the table again.")));
    Firing t = {};
    t.data = data;
    t.rel = data->tg_relation;
    t.desc = RelationGetDescr(t.rel);
    load_columns(t, data->tg_trigger->tgargs[0]);
    t.notify = std::strcmp(data->tg_trigger->tgargs[1], "notify") == 0;
    t.function = fcinfo->flinfo->fn_oid;
    return t;
}

void require_fit(const Firing& t) {
    if (t.problem != nullptr)
        ereport(ERROR, (errcode(t.problem_code), errmsg("%s", t.problem),
                        errhint("Run causal.enable() on the table again.")));
}

bool is_stamp_column(const Firing& t, AttrNumber attnum) {
    const Columns& c = t.columns;
    return attnum == c.conversation || attnum == c.msg_id || attnum == c.hlc || attnum == c.deps ||
           attnum == c.region || attnum == c.epoch || attnum == c.deleted_at || attnum == c.copies;
}

const Hlc* get_hlc(const Firing& t, HeapTuple row) {
    bool isnull = false;
    const Datum value = get(t, row, t.columns.hlc, &isnull);
    return isnull ? nullptr : reinterpret_cast<const Hlc*>(DatumGetPointer(value));
}

std::optional<Hlc> get_deleted_at(const Firing& t, HeapTuple row) {
    bool isnull = false;
    const Datum deleted_at = get(t, row, t.columns.deleted_at, &isnull);
    if (isnull) return std::nullopt;
    return *reinterpret_cast<const Hlc*>(DatumGetPointer(deleted_at));
}

Deps read_deps(const Firing& t, HeapTuple row) {
    Deps deps;
    bool isnull = false;
    const Datum value = get(t, row, t.columns.deps, &isnull);
    if (isnull) return deps;
    ArrayType* array = DatumGetArrayTypeP(value);
    if (ARR_NDIM(array) == 0) return deps;  // '{}', most messages
    // A list: what clients send, and what every region compares alike.
    if (ARR_NDIM(array) > 1 || ARR_LBOUND(array)[0] != 1) {
        deps.problem = "deps must be a one-dimensional array starting at index 1";
        deps.problem_code = ERRCODE_ARRAY_SUBSCRIPT_ERROR;
        return deps;
    }
    deconstruct_array(array, ARR_ELEMTYPE(array), sizeof(Hlc), false, TYPALIGN_DOUBLE, &deps.elements,
                      &deps.nulls, &deps.count);
    if (deps.count > kMaxDepsAccepted) {
        deps.problem = "too many deps";
        deps.problem_code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
        return deps;
    }
    for (int i = 0; i < deps.count; ++i) {
        if (deps.nulls[i]) {
            deps.problem = "a dep is NULL";
            deps.problem_code = ERRCODE_NULL_VALUE_NOT_ALLOWED;
            return deps;
        }
        const Hlc* dep = reinterpret_cast<const Hlc*>(DatumGetPointer(deps.elements[i]));
        if (deps.max == nullptr || compare(*dep, *deps.max) > 0) deps.max = dep;
    }
    return deps;
}

char* hlc_text(const Hlc& value) {
    char* text = static_cast<char*>(palloc(kHlcTextMax));
    format(value, *reinterpret_cast<char(*)[kHlcTextMax]>(text));
    return text;
}

char* qualified_name(Relation rel) {
    return const_cast<char*>(
        quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)));
}

}  // namespace causal::pg
