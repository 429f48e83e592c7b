#include "quarantine.hpp"

#include "owner.hpp"
#include "spi.hpp"
#include "subtransaction.hpp"
#include "table_stats.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
}

namespace causal::pg {

void quarantine(const Firing& t, HeapTuple row, const char* reason) {
    count(RelationGetRelid(t.rel), Counter::Quarantined);
    ErrorData* failure = nullptr;
    const bool stored = in_subtransaction(
        [&] {
            SPI_connect();
            // The row as jsonb, made as the table's owner: to_jsonb runs the
            // casts to json of the row's column types, which the owner may
            // have written. Stored with pg_causal's rights.
            Oid type = t.rel->rd_rel->reltype;
            Datum record = heap_copy_tuple_as_datum(row, t.desc);
            const OwnerScope scope = enter_owner_scope(RelationGetRelid(t.rel));
            spi_run("SELECT pg_catalog.to_jsonb($1)", SPI_OK_SELECT, {1, &type, &record});
            leave_owner_scope(scope);
            bool isnull = false;
            const Datum json = datumCopy(spi_value(1, &isnull), false, -1);
            const Oid types[] = {TEXTOID, TEXTOID, JSONBOID};
            const Datum values[] = {CStringGetTextDatum(qualified_name(t.rel)), CStringGetTextDatum(reason), json};
            spi_run("INSERT INTO causal.quarantine (table_name, reason, row_data) VALUES ($1, $2, $3)",
                    SPI_OK_INSERT, {3, types, values});
            SPI_finish();
        },
        &failure);
    if (stored) {
        ereport(LOG, (errmsg("pg_causal quarantined a row replicated into \"%s\": %s", RelationGetRelationName(t.rel),
                             reason),
                      errdetail("It is in causal.quarantine.")));
        return;
    }
    // Last resort: the row's text in the server log (output functions are a
    // superuser's to write). Formatting it can fail too, and nothing here
    // may raise.
    char* text = nullptr;
    ErrorData* unformattable = nullptr;
    in_subtransaction([&] { text = OidOutputFunctionCall(F_RECORD_OUT, heap_copy_tuple_as_datum(row, t.desc)); },
                      &unformattable);
    ereport(WARNING, (errmsg("pg_causal could not quarantine a row replicated into \"%s\": %s",
                             RelationGetRelationName(t.rel), reason),
                      errdetail("Storing it failed: %s. The row: %s", failure->message,
                                text ? text : "(could not be formatted)")));
}

}  // namespace causal::pg
