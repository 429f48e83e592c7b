// causal.vote_fence(): this region's vote on a proposed fence, by the rules
// of src/core/fencing.hpp, recorded as pending until the fence lands here.

#include <optional>
#include <string>
#include <vector>

#include "core/fencing.hpp"
#include "infra/guard.hpp"
#include "infra/postgres.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"

using namespace causal;
using namespace causal::pg;

CAUSAL_FUNCTION(vote_fence) {
    const char* voter = require_region();
    char* target = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char* proposed_view = text_to_cstring(PG_GETARG_TEXT_PP(1));
    SPI_connect();
    // Votes in this region one at a time, for the whole transaction.
    spi_run("LOCK TABLE causal.fence_votes IN EXCLUSIVE MODE", SPI_OK_UTILITY);
    // Votes whose fence landed here (the target left the voted epoch) are
    // done; the rest stay pending, however long it takes.
    spi_run("DELETE FROM causal.fence_votes v WHERE NOT EXISTS (SELECT FROM causal.regions r"
            " WHERE r.region OPERATOR(pg_catalog.=) v.target AND r.epoch OPERATOR(pg_catalog.=) v.target_epoch"
            " AND r.state OPERATOR(pg_catalog.=) 'active')",
            SPI_OK_DELETE);
    spi_run("SELECT causal.mesh_view()", SPI_OK_SELECT);
    char* view = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    spi_run("SELECT r.region, r.state OPERATOR(pg_catalog.=) 'active' FROM causal.regions r", SPI_OK_SELECT);
    // Plain arrays while SPI runs: nothing with a destructor may be live
    // when an error longjmps.
    const uint64 count = SPI_processed;
    auto** names = static_cast<char**>(palloc0(sizeof(char*) * (count + 1)));
    auto* active = static_cast<bool*>(palloc0(sizeof(bool) * (count + 1)));
    bool isnull = false;
    for (uint64 i = 0; i < count; ++i) {
        names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        active[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
    }
    spi_run("SELECT v.target FROM causal.fence_votes v", SPI_OK_SELECT);
    const uint64 pending_count = SPI_processed;
    auto** pending = static_cast<char**>(palloc0(sizeof(char*) * (pending_count + 1)));
    for (uint64 i = 0; i < pending_count; ++i)
        pending[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
    const bool same_view = strcmp(view, proposed_view) == 0;

    const fencing::Vote vote = cpp_guard([&] {
        std::vector<fencing::RegionView> regions;
        for (uint64 i = 0; i < count; ++i) regions.push_back({names[i], active[i]});
        std::vector<std::string> backing(pending, pending + pending_count);
        return fencing::vote(regions, voter, target, same_view, backing);
    });
    if (vote == fencing::Vote::Yes) {
        Oid types[2] = {TEXTOID, TEXTOID};
        Datum args[2] = {CStringGetTextDatum(target), CStringGetTextDatum(view)};
        spi_run("INSERT INTO causal.fence_votes (target, target_epoch, view)"
                " SELECT $1, r.epoch, $2 FROM causal.regions r WHERE r.region OPERATOR(pg_catalog.=) $1"
                " ON CONFLICT (target) DO UPDATE SET view = EXCLUDED.view, voted_at = pg_catalog.now()",
                SPI_OK_INSERT, {2, types, args});
    }
    SPI_finish();
    PG_RETURN_TEXT_P(cstring_to_text(fencing::describe(vote)));
}
