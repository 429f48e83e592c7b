// PostgreSQL's headers, included the one way this extension does: as C, from
// C++. Every file in extension/ includes this instead of postgres.h.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
}

#include <string>

// Declares an SQL-callable function with C linkage, as fmgr expects.
#define CAUSAL_FUNCTION(name)                                                  \
    extern "C" {                                                               \
    PG_FUNCTION_INFO_V1(name);                                                 \
    }                                                                          \
    extern "C" Datum name(PG_FUNCTION_ARGS)
