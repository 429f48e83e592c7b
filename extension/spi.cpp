#include "spi.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace causal::pg {

int pin_search_path() {
    const int level = NewGUCNestLevel();
    (void)set_config_option("search_path", kPinnedSearchPath, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    return level;
}

void unpin_search_path(int level) { AtEOXact_GUC(false, level); }

void spi_run(const char* query, int expected, SpiArgs args, bool read_only, long limit) {
    const int level = pin_search_path();
    const int result = SPI_execute_with_args(query, args.count, const_cast<Oid*>(args.types),
                                             const_cast<Datum*>(args.values), args.nulls, read_only, limit);
    unpin_search_path(level);
    if (result != expected)
        elog(ERROR, "pg_causal: %s: %s", SPI_result_code_string(result), query);
}

Datum spi_value(int column, bool* isnull) {
    if (SPI_processed == 0) {
        *isnull = true;
        return Datum(0);
    }
    return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
}

char* spi_text(uint64 row, int column) { return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column); }

}  // namespace causal::pg
