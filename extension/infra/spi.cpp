#include "infra/spi.hpp"

#include <cstring>

extern "C" {
#include "utils/guc.h"
#include "utils/memutils.h"
}

namespace causal::pg {

int pin_search_path() {
    const int level = NewGUCNestLevel();
    (void)set_config_option("search_path", kPinnedSearchPath, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    return level;
}

void unpin_search_path(int level) { AtEOXact_GUC(false, level); }

namespace {

int own_statements = 0;

// Runs `execute` as a statement of pg_causal's own.
template <typename Execute>
int own_statement(Execute execute) {
    volatile int result = 0;
    ++own_statements;
    PG_TRY();
    {
        result = execute();
    }
    PG_FINALLY();
    {
        --own_statements;
    }
    PG_END_TRY();
    return result;
}

}  // namespace

bool in_own_statement() { return own_statements > 0; }

void spi_run(const char* query, int expected, SpiArgs args, bool read_only, long limit) {
    const int level = pin_search_path();
    const int result = own_statement([&] {
        return SPI_execute_with_args(query, args.count, const_cast<Oid*>(args.types), const_cast<Datum*>(args.values),
                                     args.nulls, read_only, limit);
    });
    unpin_search_path(level);
    if (result != expected)
        elog(ERROR, "pg_causal: %s: %s", SPI_result_code_string(result), query);
}

void spi_run_plan(SPIPlanPtr plan, int expected, const Datum* values, const char* nulls, bool read_only,
                  const char* what) {
    const int level = pin_search_path();
    const int result = own_statement(
        [&] { return SPI_execute_plan(plan, const_cast<Datum*>(values), nulls, read_only, 0); });
    unpin_search_path(level);
    if (result != expected) elog(ERROR, "pg_causal: %s: %s", SPI_result_code_string(result), what);
}

namespace {

// Few statements run hot: a small table, the oldest entry replaced.
struct KeptPlan {
    char* query;
    SPIPlanPtr plan;
};
constexpr int kKeptPlans = 64;
KeptPlan kept[kKeptPlans];
int next_slot = 0;

}  // namespace

SPIPlanPtr kept_plan(const char* query, int nargs, const Oid* types, int cursor_options) {
    for (const KeptPlan& k : kept)
        if (k.query != nullptr && std::strcmp(k.query, query) == 0) return k.plan;
    const int level = pin_search_path();
    SPIPlanPtr plan = SPI_prepare_cursor(query, nargs, const_cast<Oid*>(types), cursor_options);
    unpin_search_path(level);
    if (plan == nullptr) elog(ERROR, "pg_causal could not plan \"%s\": %s", query, SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    KeptPlan& slot = kept[next_slot];
    next_slot = (next_slot + 1) % kKeptPlans;
    if (slot.query != nullptr) {
        pfree(slot.query);
        SPI_freeplan(slot.plan);
    }
    slot.query = MemoryContextStrdup(TopMemoryContext, query);
    slot.plan = plan;
    return plan;
}

Datum spi_value(int column, bool* isnull) {
    if (SPI_processed == 0) {
        *isnull = true;
        return Datum(0);
    }
    return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
}

char* spi_text(uint64 row, int column) { return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column); }

Oid spi_oid(uint64 row, int column) {
    bool isnull = false;
    const Datum value = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, &isnull);
    return isnull ? InvalidOid : DatumGetObjectId(value);
}

}  // namespace causal::pg
