// Reading one conversation of a message table into the core merge.
#include "read/conversation.hpp"

#include <cstring>
#include <new>
#include <optional>
#include <string_view>
#include <vector>

#include "infra/guard.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "infra/sqlstates.hpp"
#include "table/stamps.hpp"
#include "table/table_shape.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_operator.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/uuid.h"
}

namespace causal::pg {

bool catching_up_now(Backlog& backlog) {
    backlog = peer_backlog();
    if (backlog.peer[0] != '\0') return true;
    if (!backlog.unknown) return false;
    SPI_connect();
    spi_run("SELECT 1 FROM causal.regions r"
            " WHERE r.region IS DISTINCT FROM pg_catalog.current_setting('causal.region', true)",
            SPI_OK_SELECT, {}, true, 1);
    const bool peers = SPI_processed > 0;
    SPI_finish();
    return peers;
}

void raise_catching_up(const Backlog& backlog, const char* conversation, bool can_wait) {
    if (backlog.peer[0] == '\0')
        ereport(ERROR, (errcode(kRegionBehind),
                        errmsg("region \"%s\" started moments ago and does not know yet what it lacks",
                               region_setting ? region_setting : ""),
                        errhint("Retry in a moment, or read from another region.")));
    const char* use = backlog.current_peer[0] != '\0' ? backlog.current_peer : nullptr;
    const char* live = own_region_state().live_region;
    if (use == nullptr && live != nullptr && std::strcmp(live, backlog.peer) != 0) use = live;
    ereport(ERROR,
            (errcode(kRegionBehind),
             errmsg("region \"%s\" is still catching up on region \"%s\"", region_setting ? region_setting : "",
                    backlog.peer),
             errdetail("What region \"%s\" sends now is %.1f s ahead of its newest heartbeat applied here: what "
                       "this region holds of conversation \"%s\" may lack messages on their way.",
                       backlog.peer, static_cast<double>(backlog.lag_ms) / 1000.0, conversation),
             use != nullptr ? errhint(can_wait ? "Read from region \"%s\", which is current, or retry (or pass "
                                                 "wait_for) until this region has caught up."
                                               : "Read from region \"%s\", which is current, or retry until this "
                                                 "region has caught up.",
                                      use)
                            : errhint("Retry until this region has caught up.")));
    pg_unreachable();
}

WorkArea new_work_area() {
    MemoryContext context = AllocSetContextCreate(CurrentMemoryContext, "pg_causal merge", ALLOCSET_DEFAULT_SIZES);
    void* place = MemoryContextAlloc(context, sizeof(MemoryContextResource));
    return {context, new (place) MemoryContextResource(context)};
}

// causal.hlc is fixed-length and double-aligned at 16 bytes, so an array
// without NULLs holds the values back to back: no deconstruct_array copy.
HlcSpan hlcs_of(ArrayType* array, const char* what) {
    if (array_contains_nulls(array))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not contain NULL", what)));
    return {reinterpret_cast<const Hlc*>(ARR_DATA_PTR(array)),
            static_cast<size_t>(ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)))};
}

namespace {

std::string_view text_view(Datum value) {
    text* t = DatumGetTextPP(value);
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

// Adds one message copy; a copy without an hlc is skipped, and NULL deps
// are no deps.
void add_copy(merge::Input& input, const merge::MsgId& id, Datum hlc, bool hlc_null, Datum deps, bool deps_null,
              Datum region, bool region_null, Datum epoch, bool epoch_null) {
    if (hlc_null) return;
    HlcSpan dep_values = deps_null ? HlcSpan{} : hlcs_of(DatumGetArrayTypeP(deps));
    std::optional<std::string_view> region_name = region_null ? std::nullopt : std::optional(text_view(region));
    std::optional<int64_t> epoch_value = epoch_null ? std::nullopt : std::optional<int64_t>(DatumGetInt64(epoch));
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

void add_selected_rows(merge::Input& input, const SPITupleTable* rows, uint64 count) {
    for (uint64 i = 0; i < count; ++i) {
        bool null[6];
        Datum value[6];
        for (int c = 0; c < 6; ++c) value[c] = SPI_getbinval(rows->vals[i], rows->tupdesc, c + 1, &null[c]);
        add_row(input, value[0], null[0], value[1], null[1], value[2], null[2], value[3], null[3], value[4], null[4],
                value[5], null[5]);
    }
}

merge::History* merge_in(const merge::Input& input, FenceList fences, WorkArea area) {
    return cpp_guard([&] {
        std::vector<merge::Fence> list(fences.fences, fences.fences + fences.count);
        return make_in<merge::History>(*area.memory, input.merge(list, area.memory));
    });
}

void merged_row(const merge::History& history, uint32_t index, Datum (&values)[kMergedColumns]) {
    const merge::Message& m = history.messages()[index];
    values[0] = Int64GetDatum(static_cast<int64>(index) + 1);
    values[1] = PointerGetDatum(m.msg_id.data());
    values[2] = PointerGetDatum(&m.hlc);
    values[3] = BoolGetDatum(m.delivered);
    values[4] = BoolGetDatum(m.concurrent);
    values[5] = BoolGetDatum(m.orphan);
}

// The table's lock is kept until the end of the transaction, so no ALTER
// can change its columns before the read.
ConversationQuery conversation_query(Oid relid, const char* conversation) {
    // The privilege first: a role that may not read the table must not be
    // able to queue for a lock on it either.
    bool missing = false;
    const AclResult acl = pg_class_aclcheck_ext(relid, GetUserId(), ACL_SELECT, &missing);
    if (missing) ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    if (acl != ACLCHECK_OK) aclcheck_error(acl, OBJECT_TABLE, get_rel_name(relid));
    Relation rel = try_table_open(relid, AccessShareLock);
    if (rel == nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    char* column = nullptr;
    if (!is_message_table(relid, &column) || column == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("table %s is not a causal message table", RelationGetRelationName(rel)),
                        errdetail("It has no causal_message trigger of pg_causal's."),
                        errhint("causal.enable() makes it one.")));
    TupleDesc desc = RelationGetDescr(rel);
    Columns at = {};
    if (const ShapeProblem p = locate_message_columns(desc, RelationGetRelationName(rel), column, &at))
        ereport(ERROR, (errcode(p.sqlstate), errmsg("%s", p.problem)));
    const Form_pg_attribute key = TupleDescAttr(desc, at.conversation - 1);

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
    const char* table =
        quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel));
    const char* key_matches = psprintf("%s OPERATOR(%s.%s) $1", quote_identifier(column),
                                       quote_identifier(get_namespace_name(eq->oprnamespace)), NameStr(eq->oprname));
    char* sql = psprintf("SELECT msg_id, hlc, deps, crdb_region, epoch, copies FROM %s WHERE %s", table, key_matches);
    // A cursor reads the index range (conversation, hlc) at or after it; the
    // rows below it with a later copy a client named only when one is named.
    // The hlc operators are pg_catalog's, as the built-in types' are.
    char* tail_sql = psprintf("%s AND hlc OPERATOR(pg_catalog.>=) $2", sql);
    char* named_sql = psprintf(
        "%s AND hlc OPERATOR(pg_catalog.<) $2 AND EXISTS (SELECT FROM pg_catalog.unnest(copies) c"
        " WHERE (c).hlc OPERATOR(pg_catalog.=) ANY ($3))",
        sql);
    char* rows_sql = psprintf(
        "SELECT r.msg_id, r.hlc, r.deps, r.crdb_region, r.epoch, r.copies, r FROM %s r WHERE r.%s", table, key_matches);
    // A partial index on (conversation, deleted_at) serves both (enable()
    // makes one).
    char* deleted_sql = psprintf(
        "SELECT msg_id, hlc FROM %s WHERE %s AND deleted_at IS NOT NULL ORDER BY deleted_at, msg_id", table,
        key_matches);
    char* deleted_since_sql = psprintf(
        "SELECT msg_id, hlc FROM %s WHERE %s AND deleted_at OPERATOR(pg_catalog.>=) $2 ORDER BY deleted_at, msg_id",
        table, key_matches);
    ReleaseSysCache(opr);
    ConversationQuery query{sql,        tail_sql,   named_sql,     rows_sql,     deleted_sql, deleted_since_sql,
                            key->atttypid,
                            value,      TupleDescAttr(desc, at.hlc - 1)->atttypid,
                            at.conversation, type->eq_opr, key->attcollation};
    table_close(rel, NoLock);
    return query;
}

}  // namespace causal::pg
