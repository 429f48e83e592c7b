// causal.history(NULL::table, conversation): a conversation as a client
// opens it, every delivered message with all its columns, in the order of
// the merge.
//
// Rows come straight from the table's (conversation, hlc) index, ascending
// by hlc, and go out as they come while merge::InOrder finds them plain (the
// merge would keep that order). The first row that is not (another copy, a
// fenced write, a dep that is not an earlier row) hands the whole
// conversation to the merge. A table under row-level security, or without
// such an index, is read through SPI and merged, as catch_up does.

#include <algorithm>
#include <string_view>
#include <utility>

#include "core/merge.hpp"
#include "read/conversation.hpp"
#include "infra/guard.hpp"
#include "infra/postgres.hpp"
#include "mesh/regions.hpp"
#include "infra/spi.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_index.h"
#include "access/transam.h"
#include "utils/snapmgr.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
}

namespace causal::pg {

namespace {

// The table's btree index on (conversation, hlc ascending), whole, valid
// for this snapshot, comparing the key as the SQL path does (the same
// equality operator and collation), and the operator's function; an invalid
// oid when it has none. Read from the catalog tuple alone: deciding runs no
// code of the table owner's (a predicate's functions).
struct ConversationIndex {
    Oid index = InvalidOid;
    RegProcedure equal = InvalidOid;
    Oid key_type = InvalidOid;
    Oid collation = InvalidOid;
};

ConversationIndex find_conversation_index(Relation rel, const ConversationQuery& query, AttrNumber hlc_attnum) {
    const Oid hlc_family = get_opclass_family(GetDefaultOpClass(query.hlc_type, BTREE_AM_OID));
    List* indexes = RelationGetIndexList(rel);
    ConversationIndex found;
    ListCell* cell;
    foreach (cell, indexes) {
        Relation index = index_open(lfirst_oid(cell), AccessShareLock);
        const Form_pg_index form = index->rd_index;
        // As the planner does: an index built by CREATE INDEX with broken
        // HOT chains is not for snapshots older than it.
        const bool usable = form->indisvalid && (!form->indcheckxmin ||
                                                 TransactionIdPrecedes(HeapTupleHeaderGetXmin(index->rd_indextuple->t_data),
                                                                       TransactionXmin));
        const bool fits = usable && index->rd_rel->relam == BTREE_AM_OID && form->indnkeyatts >= 2 &&
                          form->indkey.values[0] == query.key_attnum && form->indkey.values[1] == hlc_attnum &&
                          index->rd_opfamily[1] == hlc_family && (index->rd_indoption[1] & INDOPTION_DESC) == 0 &&
                          index->rd_indcollation[0] == query.key_collation &&
                          op_in_opfamily(query.key_equal, index->rd_opfamily[0]) &&
                          heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, nullptr);
        if (fits) found = {RelationGetRelid(index), get_opcode(query.key_equal), query.key_type, query.key_collation};
        index_close(index, NoLock);
        if (OidIsValid(found.index)) break;
    }
    list_free(indexes);
    return found;
}

bool is_fenced(FenceList fences, Datum region, bool region_null, Datum epoch, bool epoch_null, const Hlc& hlc) {
    if (fences.count == 0 || region_null || epoch_null) return false;
    text* name = DatumGetTextPP(region);
    const std::string_view view(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
    for (size_t i = 0; i < fences.count; ++i)
        if (merge::fenced_write(fences.fences[i], view, DatumGetInt64(epoch), hlc)) return true;
    return false;
}

// Whether an array datum (NULL aside) has elements.
bool has_elements(Datum array) {
    ArrayType* a = DatumGetArrayTypeP(array);
    return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) > 0;
}

// A row as the table's row type shows it. A row older than an ADD COLUMN
// with a default lacks that column on disk, and only the table's own
// descriptor knows the default: such a row is deformed and formed anew.
void put_row(Tuplestorestate* store, TupleTableSlot* slot, TupleDesc desc) {
    bool should_free = false;
    HeapTuple tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
    if (HeapTupleHeaderGetNatts(tuple->t_data) >= desc->natts) {
        tuplestore_puttuple(store, tuple);
    } else {
        slot_getallattrs(slot);
        tuplestore_putvalues(store, desc, slot->tts_values, slot->tts_isnull);
    }
    if (should_free) heap_freetuple(tuple);
}

// The fast path: true when every row of the conversation was plain and went
// into `store` in index order; false (and `store` holds some of them) when
// the merge must decide.
bool read_in_index_order(Relation rel, const ConversationIndex& found, const ConversationQuery& query,
                         FenceList fences, Tuplestorestate* store, WorkArea area) {
    TupleDesc desc = RelationGetDescr(rel);
    const AttrNumber hlc_att = SPI_fnumber(desc, "hlc"), deps_att = SPI_fnumber(desc, "deps"),
                     region_att = SPI_fnumber(desc, "crdb_region"), epoch_att = SPI_fnumber(desc, "epoch"),
                     copies_att = SPI_fnumber(desc, "copies");
    auto* in_order = cpp_guard([&] { return make_in<merge::InOrder>(*area.memory, area.memory); });
    MemoryContext per_row = AllocSetContextCreate(area.context, "pg_causal history row", ALLOCSET_SMALL_SIZES);
    Relation index = index_open(found.index, AccessShareLock);
    IndexScanDesc scan = index_beginscan(rel, index, GetActiveSnapshot(), 1, 0);
    ScanKeyData key;
    ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, found.key_type, found.collation, found.equal, query.key);
    index_rescan(scan, &key, 1, nullptr, 0);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    bool plain = true;
    while (plain && index_getnext_slot(scan, ForwardScanDirection, slot)) {
        CHECK_FOR_INTERRUPTS();
        MemoryContext caller = MemoryContextSwitchTo(per_row);
        bool hlc_null, deps_null, region_null, epoch_null, copies_null;
        const Datum copies = slot_getattr(slot, copies_att, &copies_null);
        const Datum hlc = slot_getattr(slot, hlc_att, &hlc_null);
        const Datum deps = slot_getattr(slot, deps_att, &deps_null);
        Datum region = Datum(0), epoch = Datum(0);
        region_null = epoch_null = true;
        if (fences.count > 0) {
            region = slot_getattr(slot, region_att, &region_null);
            epoch = slot_getattr(slot, epoch_att, &epoch_null);
        }
        if (hlc_null) {
            plain = false;  // the merge skips such a row
        } else {
            const Hlc& value = *reinterpret_cast<const Hlc*>(DatumGetPointer(hlc));
            ArrayType* dep_array = deps_null ? nullptr : DatumGetArrayTypeP(deps);
            if (dep_array != nullptr && array_contains_nulls(dep_array))
                ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a message's deps must not contain NULL")));
            const Hlc* dep_values = dep_array ? reinterpret_cast<const Hlc*>(ARR_DATA_PTR(dep_array)) : nullptr;
            const size_t dep_count =
                dep_array ? static_cast<size_t>(ArrayGetNItems(ARR_NDIM(dep_array), ARR_DIMS(dep_array))) : 0;
            const bool other_copies = !copies_null && has_elements(copies);
            const bool fenced = is_fenced(fences, region, region_null, epoch, epoch_null, value);
            plain = cpp_guard([&] { return in_order->add(value, dep_values, dep_count, other_copies, fenced); });
        }
        MemoryContextSwitchTo(caller);
        MemoryContextReset(per_row);
        if (plain) put_row(store, slot, desc);
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(index, NoLock);
    return plain;
}

// The slow path, through SPI (so row-level security applies): every row,
// merged; the delivered ones go into `store` in the history's order.
void read_and_merge(const ConversationQuery& query, FenceList fences, Tuplestorestate* store, WorkArea area) {
    auto* input = cpp_guard([&] { return make_in<merge::Input>(*area.memory, area.memory); });
    SPI_connect();
    Oid types[1] = {query.key_type};
    Datum args[1] = {query.key};
    spi_run_plan(kept_plan(query.rows_sql, 1, types), SPI_OK_SELECT, args, nullptr, true, query.rows_sql);
    const uint64 rows = SPI_processed;
    SPITupleTable* table = SPI_tuptable;
    add_selected_rows(*input, table, rows);
    merge::History* history = merge_in(*input, fences, area);
    // (position in the history, row): a row is found by its own hlc, which
    // names its message whichever copy is presented. palloc'd, as whatever
    // follows may raise.
    auto* order = static_cast<std::pair<uint32_t, uint64>*>(
        palloc_extended(sizeof(std::pair<uint32_t, uint64>) * (rows + 1), MCXT_ALLOC_HUGE));
    uint64 delivered = 0;
    for (uint64 i = 0; i < rows; ++i) {
        bool null;
        const Datum hlc = SPI_getbinval(table->vals[i], table->tupdesc, 2, &null);
        if (null) continue;
        const auto at = history->find(*reinterpret_cast<const Hlc*>(DatumGetPointer(hlc)));
        if (at && history->messages()[*at].delivered) order[delivered++] = {*at, i};
    }
    std::sort(order, order + delivered);
    for (uint64 n = 0; n < delivered; ++n) {
        const uint64 i = order[n].second;
        bool null;
        HeapTupleHeader row = DatumGetHeapTupleHeader(SPI_getbinval(table->vals[i], table->tupdesc, 7, &null));
        HeapTupleData tuple;
        tuple.t_len = HeapTupleHeaderGetDatumLength(row);
        ItemPointerSetInvalid(&tuple.t_self);
        tuple.t_tableOid = InvalidOid;
        tuple.t_data = row;
        tuplestore_puttuple(store, &tuple);
    }
    SPI_finish();
}

}  // namespace

}  // namespace causal::pg

using namespace causal;
using namespace causal::pg;

CAUSAL_FUNCTION(conversation_history) {
    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("causal.history needs a conversation")));
    const Oid row_type = get_fn_expr_argtype(fcinfo->flinfo, 0);
    const Oid relid = OidIsValid(row_type) ? get_typ_typrelid(row_type) : InvalidOid;
    if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("causal.history needs a message table's row type, not %s", format_type_be(row_type)),
                        errhint("Pass the table as NULL::schema.table.")));
    char* conversation = TextDatumGetCString(PG_GETARG_DATUM(1));
    const ConversationQuery query = conversation_query(relid, conversation);
    Backlog backlog;
    if (catching_up_now(backlog)) raise_catching_up(backlog, conversation, false);
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    WorkArea area = new_work_area();
    const FenceList fences = read_fences_into(area.context, false);
    Relation rel = table_open(relid, AccessShareLock);
    // Row-level security, and inheritance children (which the SQL reads
    // too), leave the conversation to SPI.
    const ConversationIndex found =
        check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED || rel->rd_rel->relhassubclass
            ? ConversationIndex{}
            : find_conversation_index(rel, query, SPI_fnumber(RelationGetDescr(rel), "hlc"));
    if (!OidIsValid(found.index) || !read_in_index_order(rel, found, query, fences, rsinfo->setResult, area)) {
        tuplestore_clear(rsinfo->setResult);
        read_and_merge(query, fences, rsinfo->setResult, area);
    }
    table_close(rel, NoLock);
    MemoryContextDelete(area.context);
    return Datum(0);
}
