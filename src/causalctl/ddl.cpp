// causalctl ddl STATEMENT: one schema change in every region, in the order
// that keeps the links flowing.
//
// Logical replication carries rows, not DDL, and an apply worker stops on a
// row whose columns its table does not match ("missing replicated column").
// So the statement runs in every region inside a transaction of its own,
// each holding the table's ACCESS EXCLUSIVE lock, and only once it has
// succeeded everywhere do the transactions commit, one region after the
// other. A row a region writes after its commit reaches a region that has
// not committed yet as a change its apply worker cannot take before that
// region's lock is gone, which is when the change is there too: no link
// stops. If the statement fails anywhere, every region rolls back. If
// causalctl loses a region between the commits, it says which regions have
// the change and which do not (causalctl status then names the links that
// stall, and their cause).
//
// CREATE INDEX CONCURRENTLY cannot run in a transaction block; an index
// changes nothing that replication sees, so it runs region by region.
//
// Refused: DROP COLUMN and RENAME. Rows a region wrote before the change
// still carry the old column when they reach a region that already changed,
// and replication matches columns by name: that link would stop for good.
// Their order is docs/operations.md's (stop writing the column, let every
// link drain, then change every region).

#include <algorithm>
#include <memory>
#include <ostream>
#include <regex>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"
#include "regions.hpp"

namespace causalctl {

namespace {

struct RegionChange {
    const Region* region;
    std::unique_ptr<Connection> db;
    bool open = false;       // in the statement's transaction
    bool committed = false;
};

}  // namespace

int ddl(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& statement = options.target;
    const auto fail = [&](int code, const std::string& what, const std::vector<std::string>& changed,
                          const std::vector<std::string>& unchanged) {
        if (options.json) {
            std::vector<std::string> c, u;
            for (const auto& r : changed) c.push_back(json::string(r));
            for (const auto& r : unchanged) u.push_back(json::string(r));
            out << json::Object().add("ok", "false").add("error", json::string(what))
                       .add("changed", json::array(c)).add("unchanged", json::array(u)).str() << '\n';
        } else {
            err << "causalctl ddl: " << what << '\n';
        }
        return code;
    };
    // A schema change must reach every region: a region left out would stop
    // the links from the others.
    std::vector<RegionChange> regions;
    std::vector<std::string> all;
    for (const Region& region : mesh.regions()) all.push_back(region.name);
    try {
        for (const Region& region : mesh.regions())
            regions.push_back({&region, std::make_unique<Connection>(region.name, region.dsn, options.connect_timeout_s)});
    } catch (const DbError& error) {
        return fail(kUnreachable, std::string(error.what()) + "\nNothing was changed: a schema change goes to every region.",
                    {}, all);
    }
    if (std::regex_search(statement, std::regex("\\bdrop\\s+column\\b|\\brename\\b", std::regex::icase)))
        return fail(kRefused,
                    "refused: a dropped or renamed column cannot be ordered across regions (rows written before the "
                    "change still carry the old column, and would stop the link of every region that changed first). "
                    "Stop writing the column, wait until causalctl status shows no lag, then run the statement in "
                    "every region (docs/operations.md, Schema changes).\nNothing was changed.",
                    {}, all);
    static const std::regex concurrently("\\bconcurrently\\b", std::regex::icase);
    std::vector<std::string> changed;
    // A change may take long (an index, a rewrite): no statement timeout,
    // but a lock that cannot be had soon fails it.
    try {
        for (auto& r : regions) r.db->exec("SET statement_timeout = 0");
    } catch (const DbError& error) {
        return fail(kUnreachable, std::string(error.what()) + "\nNothing was changed.", {}, all);
    }
    if (std::regex_search(statement, concurrently)) {
        for (auto& r : regions) {
            try {
                r.db->exec(statement);
                changed.push_back(r.region->name);
            } catch (const DbError& error) {
                std::vector<std::string> rest;
                for (const auto& name : all)
                    if (std::find(changed.begin(), changed.end(), name) == changed.end()) rest.push_back(name);
                return fail(kUnreachable,
                            std::string(error.what()) + "\nChanged in: " + (changed.empty() ? "none" : join(changed)) +
                                "; not in: " + join(rest) + ". Fix the cause and run it again where it is missing.",
                            changed, rest);
            }
        }
    } else {
        // Everywhere in a transaction first; a lock that cannot be had soon
        // (a long transaction on the table) fails the change, not the mesh.
        try {
            for (auto& r : regions) {
                r.db->exec("BEGIN");
                r.open = true;
                r.db->exec("SET LOCAL lock_timeout = '10s'");
                r.db->exec(statement);
                // While a mesh is being updated from 0.2.0 the publications
                // list each message table's columns: a column added must be
                // in that list before the change commits, or it would not
                // travel (a no-op otherwise). Publications are a superuser's.
                r.db->exec("SELECT causal.mesh_publication() FROM pg_roles"
                           " WHERE rolname = current_user AND rolsuper");
            }
        } catch (const DbError& error) {
            for (auto& r : regions)
                if (r.open) {
                    try {
                        r.db->exec("ROLLBACK");
                    } catch (const DbError&) {
                        // a lost connection rolls back by itself
                    }
                }
            return fail(kUnreachable, std::string(error.what()) + "\nNothing was changed: every region rolled back.", {},
                        all);
        }
        for (auto& r : regions) {
            try {
                r.db->exec("COMMIT");
                r.committed = true;
                changed.push_back(r.region->name);
            } catch (const DbError& error) {
                // The region whose COMMIT failed may or may not have it (a
                // connection lost after the server committed); the rest do not.
                std::vector<std::string> rest;
                for (auto& other : regions)
                    if (!other.committed && &other != &r) rest.push_back(other.region->name);
                return fail(kUnreachable,
                            std::string(error.what()) + "\nThe change is committed in " +
                                (changed.empty() ? "no region" : join(changed)) + ", unknown in " + r.region->name +
                                (rest.empty() ? "" : ", and not in " + join(rest)) +
                                ": look there, and run it where it is missing (causalctl status names the links "
                                "that wait for it).",
                            changed, rest);
            }
        }
    }
    if (options.json) {
        std::vector<std::string> c;
        for (const auto& r : changed) c.push_back(json::string(r));
        out << json::Object().add("ok", "true").add("changed", json::array(c)).str() << '\n';
    } else {
        out << "changed in every region: " << join(changed) << '\n';
    }
    return kOk;
}

}  // namespace causalctl
