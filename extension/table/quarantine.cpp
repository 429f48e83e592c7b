#include "table/quarantine.hpp"

#include "infra/owner.hpp"
#include "infra/spi.hpp"
#include "infra/subtransaction.hpp"
#include "table/table_stats.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
}

namespace causal::pg {

namespace {

// The row as jsonb, made as the table's owner: to_jsonb runs the casts to
// json of the row's column types, which the owner may have written. When
// that fails, the row's text (output functions are a superuser's to write)
// as a jsonb string. Call with SPI connected.
Datum row_as_jsonb(const Firing& t, HeapTuple row) {
    Datum json = Datum(0);
    ErrorData* failure = nullptr;
    const bool made = in_subtransaction(
        [&] {
            Oid type = t.rel->rd_rel->reltype;
            Datum record = heap_copy_tuple_as_datum(row, t.desc);
            const OwnerScope scope = enter_owner_scope(RelationGetRelid(t.rel));
            spi_run("SELECT pg_catalog.to_jsonb($1)", SPI_OK_SELECT, {1, &type, &record});
            leave_owner_scope(scope);
            bool isnull = false;
            json = datumCopy(spi_value(1, &isnull), false, -1);
        },
        &failure);
    if (made) return json;
    const Oid type = TEXTOID;
    const Datum text = CStringGetTextDatum(OidOutputFunctionCall(F_RECORD_OUT, heap_copy_tuple_as_datum(row, t.desc)));
    spi_run("SELECT pg_catalog.to_jsonb($1)", SPI_OK_SELECT, {1, &type, &text});
    bool isnull = false;
    return datumCopy(spi_value(1, &isnull), false, -1);
}

}  // namespace

// Nothing is dropped: when even the quarantine cannot take the row (the
// database read-only, the disk full), the error is raised, and the apply
// worker retries the transaction later. Replication waits; no row is lost.
void quarantine(const Firing& t, HeapTuple row, const char* reason) {
    SPI_connect();
    const Datum json = row_as_jsonb(t, row);
    const Oid types[] = {TEXTOID, TEXTOID, JSONBOID};
    const Datum values[] = {CStringGetTextDatum(qualified_name(t.rel)), CStringGetTextDatum(reason), json};
    spi_run("INSERT INTO causal.quarantine (table_name, reason, row_data) VALUES ($1, $2, $3)", SPI_OK_INSERT,
            {3, types, values});
    SPI_finish();
    count(RelationGetRelid(t.rel), Counter::Quarantined);
    ereport(LOG, (errmsg("pg_causal quarantined a row replicated into \"%s\": %s", RelationGetRelationName(t.rel),
                         reason),
                  errdetail("It is in causal.quarantine.")));
}

}  // namespace causal::pg
