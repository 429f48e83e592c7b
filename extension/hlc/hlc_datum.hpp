// Moving causal.hlc values between fmgr and the core's Hlc struct.
#pragma once

#include "core/hlc.hpp"
#include "infra/postgres.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

namespace causal::pg {

inline const Hlc* arg_hlc(FunctionCallInfo fcinfo, int n) {
    return reinterpret_cast<const Hlc*>(PG_GETARG_POINTER(n));
}

inline Datum hlc_datum(const Hlc& value) {
    Hlc* copy = static_cast<Hlc*>(palloc(sizeof(Hlc)));
    *copy = value;
    return PointerGetDatum(copy);
}

// 48 bits of milliseconds end in the year 10889, well inside timestamptz.
inline TimestampTz unix_ms_to_timestamptz(uint64_t unix_ms) {
    return static_cast<int64>(unix_ms) * 1000 -
           (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

// The hlc as CockroachDB's DECIMAL timestamp, a numeric datum.
Datum cockroach_decimal_datum(const Hlc& value);

}  // namespace causal::pg
