#include "table/stamps.hpp"

#include <algorithm>
#include <optional>

#include "hlc/hlc_datum.hpp"

extern "C" {
#include "executor/executor.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
}

namespace causal::pg {

namespace {

// The composite type of the `copies` column's elements.
Oid copy_type(const Firing& t) {
    return get_element_type(TupleDescAttr(t.desc, t.columns.copies - 1)->atttypid);
}

Stamp head_stamp(const Firing& t, HeapTuple row) {
    Stamp s = {};
    if (const Hlc* hlc = get_hlc(t, row)) s.hlc = *hlc;
    s.deps = get(t, row, t.columns.deps, &s.deps_null);
    s.region = get(t, row, t.columns.region, &s.region_null);
    s.epoch = get(t, row, t.columns.epoch, &s.epoch_null);
    return s;
}

// Whether a stamp's deps are all strictly older than it.
bool deps_below(const Stamp& s) {
    if (s.deps_null) return true;
    ArrayType* array = DatumGetArrayTypeP(s.deps);
    if (array_contains_nulls(array)) return false;
    const auto* deps = reinterpret_cast<const Hlc*>(ARR_DATA_PTR(array));
    const int n = ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
    for (int i = 0; i < n; ++i)
        if (!(deps[i] < s.hlc)) return false;
    return true;
}

}  // namespace

int copy_elements(Datum copies, HeapTupleHeader** elements) {
    ArrayType* array = DatumGetArrayTypeP(copies);
    if (ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) == 0) return 0;
    Datum* values;
    bool* nulls;
    int n;
    int16 length;
    bool byval;
    char align;
    get_typlenbyvalalign(ARR_ELEMTYPE(array), &length, &byval, &align);
    deconstruct_array(array, ARR_ELEMTYPE(array), length, byval, align, &values, &nulls, &n);
    *elements = static_cast<HeapTupleHeader*>(palloc(sizeof(HeapTupleHeader) * n));
    for (int i = 0; i < n; ++i) (*elements)[i] = nulls[i] ? nullptr : DatumGetHeapTupleHeader(values[i]);
    return n;
}

Stamps read_stamps(const Firing& t, HeapTuple row) {
    bool isnull = false;
    const Datum value = get(t, row, t.columns.copies, &isnull);
    HeapTupleHeader* copies = nullptr;
    const int others = isnull ? 0 : copy_elements(value, &copies);
    Stamps out = {static_cast<Stamp*>(palloc(sizeof(Stamp) * (others + 1))), 0, nullptr, nullptr};
    out.items[out.count++] = head_stamp(t, row);
    for (int i = 0; i < others; ++i) {
        if (copies[i] == nullptr) {
            out.problem = "a copy is NULL";
            continue;
        }
        HeapTupleHeader copy = copies[i];
        Stamp s = {};
        bool hlc_null = false;
        const Datum hlc = GetAttributeByNum(copy, 1, &hlc_null);
        if (hlc_null) {
            out.problem = "a copy's hlc is NULL";
            continue;
        }
        s.hlc = *reinterpret_cast<const Hlc*>(DatumGetPointer(hlc));
        s.deps = GetAttributeByNum(copy, 2, &s.deps_null);
        s.region = GetAttributeByNum(copy, 3, &s.region_null);
        s.epoch = GetAttributeByNum(copy, 4, &s.epoch_null);
        out.items[out.count++] = s;
    }
    for (int i = 1; i < out.count && !out.problem; ++i)
        if (!deps_below(out.items[i])) out.problem = "a copy's dep is not older than the copy itself";
    // The head stays first only if it is the smallest, as every row pg_causal
    // writes has it; sorted and without repeats either way.
    std::sort(out.items, out.items + out.count, [](const Stamp& a, const Stamp& b) { return a.hlc < b.hlc; });
    out.count = static_cast<int>(
        std::unique(out.items, out.items + out.count, [](const Stamp& a, const Stamp& b) { return a.hlc == b.hlc; }) -
        out.items);
    out.hlcs = static_cast<Hlc*>(palloc(sizeof(Hlc) * out.count));
    for (int i = 0; i < out.count; ++i) out.hlcs[i] = out.items[i].hlc;
    return out;
}

copies::Names names_of(const Stamps& stamps, const std::optional<Hlc>& deleted_at, bool deletion_fenced) {
    return copies::Names{stamps.hlcs, static_cast<size_t>(stamps.count), deleted_at, deletion_fenced};
}

Datum copies_datum(const Firing& t, const Stamp* stamps, int count) {
    const Oid type = copy_type(t);
    if (count == 0) return PointerGetDatum(construct_empty_array(type));
    TupleDesc desc = lookup_rowtype_tupdesc(type, -1);
    auto* elements = static_cast<Datum*>(palloc(sizeof(Datum) * count));
    for (int i = 0; i < count; ++i) {
        const Stamp& s = stamps[i];
        Datum values[4] = {hlc_datum(s.hlc), s.deps, s.region, s.epoch};
        bool nulls[4] = {false, s.deps_null, s.region_null, s.epoch_null};
        elements[i] = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    }
    int16 length;
    bool byval;
    char align;
    get_typlenbyvalalign(type, &length, &byval, &align);
    ReleaseTupleDesc(desc);
    return PointerGetDatum(construct_array(elements, count, type, length, byval, align));
}

Datum no_copies(const Firing& t) { return PointerGetDatum(construct_empty_array(copy_type(t))); }

}  // namespace causal::pg

// The latest stamp a row carries: its hlc, its tombstone's, its copies'.
// Only grows: a copy joins with its own hlc, a tombstone lands once. The
// key of the index the relay pages along (enable.sql), so it must not fail
// on any row the table can hold: NULL and malformed copies are skipped.
CAUSAL_FUNCTION(latest_stamp) {
    std::optional<causal::Hlc> latest;
    auto consider = [&](const causal::Hlc& stamp) {
        if (!latest || *latest < stamp) latest = stamp;
    };
    if (!PG_ARGISNULL(0)) consider(*causal::pg::arg_hlc(fcinfo, 0));
    if (!PG_ARGISNULL(1)) consider(*causal::pg::arg_hlc(fcinfo, 1));
    if (!PG_ARGISNULL(2)) {
        HeapTupleHeader* copies = nullptr;
        const int n = causal::pg::copy_elements(PG_GETARG_DATUM(2), &copies);
        for (int i = 0; i < n; ++i) {
            if (copies[i] == nullptr) continue;
            bool isnull = false;
            const Datum hlc = GetAttributeByNum(copies[i], 1, &isnull);
            if (!isnull) consider(*reinterpret_cast<const causal::Hlc*>(DatumGetPointer(hlc)));
        }
    }
    if (!latest) PG_RETURN_NULL();
    return causal::pg::hlc_datum(*latest);
}
