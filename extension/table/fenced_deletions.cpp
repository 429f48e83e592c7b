#include "table/fenced_deletions.hpp"

#include "infra/spi.hpp"
#include "mesh/regions.hpp"
#include "mesh/relay.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "utils/builtins.h"
}

namespace causal::pg {

namespace {

const char* state_name(FencedDeletion state) {
    switch (state) {
        case FencedDeletion::Kept:
            return "kept";
        case FencedDeletion::AwaitingBody:
            return "awaiting body";
        case FencedDeletion::Restored:
            return "restored";
        case FencedDeletion::Erased:
            return "erased";
    }
    return "kept";
}

}  // namespace

bool deletion_fenced(const Firing& t, HeapTuple row, const std::optional<Hlc>& deleted_at) {
    if (!deleted_at || t.columns.written_by == 0) return false;
    bool isnull = false;
    const Datum by = get(t, row, t.columns.written_by, &isnull);
    return !isnull && fenced_deletion(TextDatumGetCString(by), *deleted_at);
}

void note_fenced_deletion(const Firing& t, HeapTuple tombstone, FencedDeletion state) {
    bool isnull = false;
    const Oid types[] = {OIDOID, UUIDOID, TEXTOID, TupleDescAttr(t.desc, t.columns.deleted_at - 1)->atttypid, TEXTOID};
    const Datum values[] = {ObjectIdGetDatum(RelationGetRelid(t.rel)), get(t, tombstone, t.columns.msg_id, &isnull),
                            get(t, tombstone, t.columns.written_by, &isnull),
                            get(t, tombstone, t.columns.deleted_at, &isnull),
                            CStringGetTextDatum(state_name(state))};
    SPI_connect();
    spi_run("INSERT INTO causal.fenced_deletions (message_table, msg_id, written_by, deleted_at, state)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_table, msg_id) DO NOTHING",
            SPI_OK_INSERT, {5, types, values});
    const bool noted = SPI_processed > 0;
    SPI_finish();
    // Once: the same tombstone comes again by every path of the mesh.
    if (!noted) return;
    // A body to bring back from a live copy elsewhere.
    if (state == FencedDeletion::AwaitingBody) wake_relay_at_commit();
    ereport(LOG, (errmsg("pg_causal did not apply a deletion in \"%s\" that region \"%s\" wrote while fenced",
                         RelationGetRelationName(t.rel), TextDatumGetCString(values[2])),
                  errdetail("It is in causal.fenced_deletions (%s).", state_name(state))));
}

void settle_fenced_deletion(const Firing& t, Datum msg_id, FencedDeletion state) {
    const Oid types[] = {OIDOID, UUIDOID, TEXTOID};
    const Datum values[] = {ObjectIdGetDatum(RelationGetRelid(t.rel)), msg_id, CStringGetTextDatum(state_name(state))};
    SPI_connect();
    spi_run("UPDATE causal.fenced_deletions d SET state = $3"
            " WHERE d.message_table OPERATOR(pg_catalog.=) $1 AND d.msg_id OPERATOR(pg_catalog.=) $2"
            "   AND d.state OPERATOR(pg_catalog.=) 'awaiting body'",
            SPI_OK_UPDATE, {3, types, values});
    SPI_finish();
}

}  // namespace causal::pg
