// causal.hlc: I/O, comparison, index support and casts. A datum is the
// core's Hlc struct itself (16 bytes, passed by reference).
#include "core/hlc.hpp"
#include "infra/guard.hpp"
#include "hlc/hlc_datum.hpp"

extern "C" {
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "port/pg_bswap.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/sortsupport.h"
}

#include <cstring>

using causal::Hlc;
using causal::pg::arg_hlc;
using causal::pg::hlc_datum;

CAUSAL_FUNCTION(hlc_in) {
    const char* text = PG_GETARG_CSTRING(0);
    Hlc value = causal::pg::cpp_guard([&] { return causal::parse(text); });
    return hlc_datum(value);
}

CAUSAL_FUNCTION(hlc_out) {
    char buf[causal::kHlcTextMax];
    causal::format(*arg_hlc(fcinfo, 0), buf);
    PG_RETURN_CSTRING(pstrdup(buf));
}

CAUSAL_FUNCTION(hlc_send) {
    const auto bytes = causal::binary(*arg_hlc(fcinfo, 0));
    StringInfoData buf;
    pq_begintypsend(&buf);
    pq_sendbytes(&buf, reinterpret_cast<const char*>(bytes.data()), static_cast<int>(bytes.size()));
    PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

CAUSAL_FUNCTION(hlc_recv) {
    StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
    const size_t remaining = static_cast<size_t>(buf->len - buf->cursor);
    const auto* bytes = reinterpret_cast<const uint8_t*>(buf->data + buf->cursor);
    Hlc value = causal::pg::cpp_guard([&] { return causal::parse_binary(bytes, remaining); });
    buf->cursor = buf->len;
    return hlc_datum(value);
}

static int compare_args(FunctionCallInfo fcinfo) {
    return causal::compare(*arg_hlc(fcinfo, 0), *arg_hlc(fcinfo, 1));
}

CAUSAL_FUNCTION(hlc_eq) { PG_RETURN_BOOL(compare_args(fcinfo) == 0); }
CAUSAL_FUNCTION(hlc_ne) { PG_RETURN_BOOL(compare_args(fcinfo) != 0); }
CAUSAL_FUNCTION(hlc_lt) { PG_RETURN_BOOL(compare_args(fcinfo) < 0); }
CAUSAL_FUNCTION(hlc_le) { PG_RETURN_BOOL(compare_args(fcinfo) <= 0); }
CAUSAL_FUNCTION(hlc_gt) { PG_RETURN_BOOL(compare_args(fcinfo) > 0); }
CAUSAL_FUNCTION(hlc_ge) { PG_RETURN_BOOL(compare_args(fcinfo) >= 0); }
CAUSAL_FUNCTION(hlc_cmp) { PG_RETURN_INT32(compare_args(fcinfo)); }

CAUSAL_FUNCTION(hlc_smaller) {
    PG_RETURN_DATUM(compare_args(fcinfo) <= 0 ? PG_GETARG_DATUM(0) : PG_GETARG_DATUM(1));
}
CAUSAL_FUNCTION(hlc_larger) {
    PG_RETURN_DATUM(compare_args(fcinfo) >= 0 ? PG_GETARG_DATUM(0) : PG_GETARG_DATUM(1));
}

static int hlc_fast_cmp(Datum a, Datum b, SortSupport) {
    return causal::compare(*reinterpret_cast<const Hlc*>(DatumGetPointer(a)),
                           *reinterpret_cast<const Hlc*>(DatumGetPointer(b)));
}

// For the values of this era the abbreviated key is the whole order, so it
// never needs to be abandoned.
static Datum hlc_abbrev_convert(Datum original, SortSupport) {
    return UInt64GetDatum(
        causal::abbreviated_key(*reinterpret_cast<const Hlc*>(DatumGetPointer(original))));
}
static bool hlc_abbrev_abort(int, SortSupport) { return false; }

CAUSAL_FUNCTION(hlc_sortsupport) {
    SortSupport ssup = reinterpret_cast<SortSupport>(PG_GETARG_POINTER(0));
    ssup->comparator = hlc_fast_cmp;
    if (ssup->abbreviate) {
        // ssup_datum_unsigned_cmp lets tuplesort use its specialized radix-free
        // quicksort for the abbreviated pass.
        ssup->comparator = ssup_datum_unsigned_cmp;
        ssup->abbrev_converter = hlc_abbrev_convert;
        ssup->abbrev_abort = hlc_abbrev_abort;
        ssup->abbrev_full_comparator = hlc_fast_cmp;
    }
    PG_RETURN_VOID();
}

CAUSAL_FUNCTION(hlc_hash) {
    const auto bytes = causal::binary(*arg_hlc(fcinfo, 0));
    return hash_any(bytes.data(), static_cast<int>(bytes.size()));
}

CAUSAL_FUNCTION(hlc_hash_extended) {
    const auto bytes = causal::binary(*arg_hlc(fcinfo, 0));
    return hash_any_extended(bytes.data(), static_cast<int>(bytes.size()), static_cast<uint64>(PG_GETARG_INT64(1)));
}

CAUSAL_FUNCTION(hlc_from_parts) {
    int64 physical_ms = PG_GETARG_INT64(0);
    int32 logical = PG_GETARG_INT32(1);
    int32 node = PG_GETARG_INT32(2);
    Hlc value = causal::pg::cpp_guard([&] { return Hlc::from_parts(physical_ms, logical, node); });
    return hlc_datum(value);
}

CAUSAL_FUNCTION(hlc_physical_ms) {
    PG_RETURN_INT64(static_cast<int64>(arg_hlc(fcinfo, 0)->physical_ms()));
}
CAUSAL_FUNCTION(hlc_logical) { PG_RETURN_INT32(static_cast<int32>(arg_hlc(fcinfo, 0)->logical())); }
CAUSAL_FUNCTION(hlc_node) { PG_RETURN_INT32(static_cast<int32>(arg_hlc(fcinfo, 0)->node)); }

CAUSAL_FUNCTION(hlc_to_timestamptz) {
    PG_RETURN_TIMESTAMPTZ(causal::pg::unix_ms_to_timestamptz(arg_hlc(fcinfo, 0)->physical_ms()));
}

Datum causal::pg::cockroach_decimal_datum(const Hlc& value) {
    char buf[causal::kCockroachDecimalMax];
    causal::to_cockroach_decimal(value, buf);
    return DirectFunctionCall3(numeric_in, CStringGetDatum(buf), ObjectIdGetDatum(InvalidOid),
                               Int32GetDatum(-1));
}

CAUSAL_FUNCTION(hlc_to_numeric) { return causal::pg::cockroach_decimal_datum(*arg_hlc(fcinfo, 0)); }
