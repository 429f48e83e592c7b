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
// Each step goes to every region at once (the lock too: a region's lock is
// not held while another's is waited for), and every session has a lock
// timeout and an idle-in-transaction timeout (--lock-timeout,
// --idle-timeout): a causalctl killed, frozen or cut off while it holds the
// locks leaves them held no longer than that.
//
// What it refuses is decided by the catalog, not by the statement's text:
// inside the open transactions, before and after the statement, it reads
// every table the mesh replicates (the message tables, the mesh's
// publications' tables) with its columns, and src/core/schema_change.hpp
// judges the difference: a dropped or renamed column or table, a type
// that may refuse the old values, a message table unmade. Rows a region
// wrote before the change still carry the table as it was when they reach
// a region that changed first: that link would stop for good. Refused,
// every region rolls back, and the message says what the statement would
// have changed, where, and the order to do it by hand (docs/operations.md, Schema
// changes).
//
// A statement PostgreSQL refuses inside a transaction block as CREATE,
// DROP or REINDEX INDEX CONCURRENTLY (it says so, 25001) changes nothing
// that replication sees: it runs region by region, and the catalog is
// judged after each region (an index pg_causal needs, dropped, stops it).

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>

#include "commands.hpp"
#include "core/schema_change.hpp"
#include "json.hpp"
#include "pg.hpp"
#include "regions.hpp"
#include "report.hpp"

namespace causalctl {

namespace {

namespace schema = causal::schema;

struct RegionChange {
    const Region* region;
    std::unique_ptr<Connection> db;
    bool committed = false;
};

// What every region answered to one step: a result or an error each.
struct Answers {
    std::vector<std::optional<Result>> results;
    std::vector<std::optional<DbError>> errors;
    bool failed() const {
        return std::any_of(errors.begin(), errors.end(), [](const auto& e) { return e.has_value(); });
    }
    void throw_first() const {
        for (const auto& e : errors)
            if (e) throw *e;
    }
};

// Sends every region its statement at once, then collects every answer:
// the regions work in parallel, and every session is idle again after.
// `params` has one list per region, or none.
Answers in_parallel(std::vector<RegionChange>& regions, const std::string& sql, const std::vector<Params>& params = {}) {
    Answers answers;
    answers.results.resize(regions.size());
    answers.errors.resize(regions.size());
    std::vector<bool> sent(regions.size(), false);
    for (size_t i = 0; i < regions.size(); ++i) {
        try {
            regions[i].db->send(sql, params.empty() ? Params{} : params[i]);
            sent[i] = true;
        } catch (const DbError& e) {
            answers.errors[i] = e;
        }
    }
    for (size_t i = 0; i < regions.size(); ++i) {
        if (!sent[i]) continue;
        try {
            answers.results[i] = regions[i].db->receive();
        } catch (const DbError& e) {
            answers.errors[i] = e;
        }
    }
    return answers;
}

// Every table the mesh replicates, and (after the statement) every one it
// replicated before ($2), with its columns: a row per column.
const char* const kCatalog =
    "WITH m AS (SELECT relid::oid AS relid, conversation::text AS conversation, problem"
    "             FROM causal.message_tables()),"
    "     watched AS (SELECT relid FROM m"
    "                 UNION SELECT t.relid FROM pg_publication p, LATERAL pg_get_publication_tables(p.pubname) t"
    "                        WHERE p.pubname = ANY (string_to_array($1, ', '))"
    "                 UNION SELECT unnest($2::oid[]))"
    "SELECT w.relid::text, c.oid IS NOT NULL, coalesce(format('%I.%I', n.nspname, c.relname), ''),"
    "       m.relid IS NOT NULL, coalesce(m.conversation, ''), m.problem, coalesce(c.relfilenode::text, ''),"
    "       a.attnum, a.attname, a.atttypid::text, a.atttypmod, format_type(a.atttypid, a.atttypmod), a.attisdropped"
    "  FROM watched w"
    "  LEFT JOIN pg_class c ON c.oid = w.relid"
    "  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  LEFT JOIN m ON m.relid = w.relid"
    "  LEFT JOIN pg_attribute a ON a.attrelid = w.relid AND a.attnum > 0"
    " ORDER BY w.relid, a.attnum";

// pg_causal's columns, and the casts PostgreSQL makes implicitly.
const char* const kRules =
    "SELECT 'column', name::text, NULL FROM causal.message_columns()"
    " UNION ALL SELECT 'cast', castsource::text, casttarget::text FROM pg_cast WHERE castcontext = 'i'";

unsigned oid_of(const Result& r, int row, int column) {
    return static_cast<unsigned>(integer_from(r.region(), r.text(row, column), "an oid", 0, UINT_MAX));
}

std::vector<schema::Table> tables_of(const Result& r) {
    std::vector<schema::Table> tables;
    for (int i = 0; i < r.rows(); ++i) {
        const unsigned oid = oid_of(r, i, 0);
        if (tables.empty() || tables.back().oid != oid) {
            schema::Table t;
            t.oid = oid;
            t.exists = r.boolean(i, 1);
            t.name = r.text(i, 2);
            t.message = r.boolean(i, 3);
            t.conversation = r.text(i, 4);
            t.problem = r.maybe(i, 5);
            t.storage = r.text(i, 6);
            tables.push_back(std::move(t));
        }
        if (r.is_null(i, 7)) continue;
        tables.back().columns.push_back(schema::Column{static_cast<int>(r.integer(i, 7)), r.text(i, 8), oid_of(r, i, 9),
                                                       static_cast<int>(r.integer(i, 10)), r.text(i, 11),
                                                       r.boolean(i, 12)});
    }
    return tables;
}

schema::Rules rules_of(const Result& r) {
    schema::Rules rules;
    for (int i = 0; i < r.rows(); ++i) {
        if (r.text(i, 0) == "column") rules.pg_causal_columns.insert(r.text(i, 1));
        else rules.implicit_casts.insert({oid_of(r, i, 1), oid_of(r, i, 2)});
    }
    return rules;
}

// The oids of `tables`, as the $2 of kCatalog.
std::string oids(const std::vector<schema::Table>& tables) {
    std::vector<std::string> items;
    for (const auto& t : tables) items.push_back(std::to_string(t.oid));
    return text_array(items);
}

// Each refusal (change, why) and the regions it was found in.
using Found = std::map<std::pair<std::string, std::string>, std::vector<std::string>>;

// The refusals found, said once each with where.
std::string refusal_text(const Found& found, size_t regions) {
    std::string text;
    for (const auto& [refusal, where] : found)
        text += std::string(text.empty() ? "" : "\n") + "the statement " + refusal.first + " (" +
                (where.size() == regions ? std::string("in every region") : "in " + join(where)) + "): " +
                refusal.second;
    return text;
}

// Whether every error is PostgreSQL refusing an index statement
// CONCURRENTLY inside a transaction block (25001 names the statement).
bool concurrently_only(const Answers& answers) {
    for (const auto& e : answers.errors)
        if (!e || e->sqlstate() != "25001" || std::string(e->what()).find("CONCURRENTLY") == std::string::npos)
            return false;
    return true;
}

std::vector<std::string> json_strings(const std::vector<std::string>& items) {
    std::vector<std::string> out;
    for (const auto& i : items) out.push_back(json::string(i));
    return out;
}

}  // namespace

int ddl(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& statement = options.target;
    Report report("ddl", options, out, err);
    const std::vector<std::string> all = mesh.names();
    const auto outcome = [&](const std::vector<std::string>& changed, const std::vector<std::string>& unchanged) {
        report.add("changed", json::array(json_strings(changed))).add("unchanged", json::array(json_strings(unchanged)));
    };
    // A schema change must reach every region: a region left out would stop
    // the links from the others.
    std::vector<RegionChange> regions;
    try {
        for (const Region& region : mesh.regions())
            regions.push_back({&region, std::make_unique<Connection>(region.name, region.dsn, options.session)});
    } catch (const DbError& error) {
        outcome({}, all);
        return report.error(std::string(error.what()) + "\nNothing was changed: a schema change goes to every region.",
                            error.region());
    }
    // A change may take long (an index, a rewrite): no statement timeout,
    // but a lock that cannot be had soon (a long transaction on the table)
    // fails it, not the mesh.
    if (Answers set = in_parallel(regions, "SET statement_timeout = 0"); set.failed()) {
        outcome({}, all);
        for (const auto& e : set.errors)
            if (e) return report.error(std::string(e->what()) + "\nNothing was changed.", e->region());
    }

    const auto rollback = [&] {
        for (auto& r : regions)
            if (r.db->in_transaction()) {
                try {
                    r.db->exec("ROLLBACK");
                } catch (const DbError&) {
                    // a lost connection rolls back by itself
                }
            }
    };
    std::vector<std::vector<schema::Table>> before(regions.size());
    bool concurrently = false;
    try {
        in_parallel(regions, "BEGIN").throw_first();
        Answers was = in_parallel(regions, kCatalog, std::vector<Params>(regions.size(), {kMeshPublications, "{}"}));
        was.throw_first();
        for (size_t i = 0; i < regions.size(); ++i) before[i] = tables_of(*was.results[i]);
        // The statement, and with it the locks, everywhere at once.
        Answers ran = in_parallel(regions, statement);
        if (ran.failed() && concurrently_only(ran)) {
            concurrently = true;
            rollback();
        } else {
            ran.throw_first();
            for (auto& r : regions)
                if (!r.db->in_transaction())
                    throw DbError(r.region->name, "the statement ended causalctl's transaction (a transaction "
                                                  "control statement is no schema change)");
            std::vector<Params> then;
            for (const auto& tables : before) then.push_back({kMeshPublications, oids(tables)});
            Answers is = in_parallel(regions, kCatalog, then);
            is.throw_first();
            Answers rules = in_parallel(regions, kRules);
            rules.throw_first();
            Found refused;
            for (size_t i = 0; i < regions.size(); ++i)
                for (const auto& r : schema::refused_changes(before[i], tables_of(*is.results[i]), rules_of(*rules.results[i])))
                    refused[{r.change, r.why}].push_back(regions[i].region->name);
            if (!refused.empty()) {
                rollback();
                outcome({}, all);
                return report.refuse(refusal_text(refused, regions.size()));
            }
            // While a mesh is being updated from 0.2.0 the publications
            // list each message table's columns: a column added must be
            // in that list before the change commits, or it would not
            // travel (a no-op otherwise). Publications are a superuser's.
            in_parallel(regions, "SELECT causal.mesh_publication() FROM pg_roles"
                                 " WHERE rolname = current_user AND rolsuper").throw_first();
        }
    } catch (const DbError& error) {
        rollback();
        outcome({}, all);
        return report.error(std::string(error.what()) + "\nNothing was changed: every region rolled back.",
                            error.region());
    }

    std::vector<std::string> changed;
    const auto rest = [&](const RegionChange* except) {
        std::vector<std::string> names;
        for (auto& other : regions)
            if (std::find(changed.begin(), changed.end(), other.region->name) == changed.end() && &other != except)
                names.push_back(other.region->name);
        return names;
    };
    if (concurrently) {
        // Region by region, outside a transaction; judged after each.
        for (size_t i = 0; i < regions.size(); ++i) {
            RegionChange& r = regions[i];
            try {
                // A CONCURRENTLY build waits for every older transaction,
                // under lock_timeout too: no ACCESS EXCLUSIVE lock is held
                // while it does, so it may wait as long as they last.
                r.db->exec("SET lock_timeout = 0");
                r.db->exec(statement);
                changed.push_back(r.region->name);
                Result is = r.db->exec(kCatalog, {kMeshPublications, oids(before[i])});
                const auto refused = schema::refused_changes(before[i], tables_of(is), rules_of(r.db->exec(kRules)));
                if (!refused.empty()) {
                    Found found;
                    for (const auto& f : refused) found[{f.change, f.why}].push_back(r.region->name);
                    outcome(changed, rest(nullptr));
                    return report.error(refusal_text(found, regions.size()) +
                                            "\nIt ran outside a transaction (CONCURRENTLY): changed in " +
                                            join(changed) + "; not run in: " + join(rest(nullptr)) +
                                            ". Undo it where it ran.",
                                        r.region->name);
                }
            } catch (const DbError& error) {
                outcome(changed, rest(nullptr));
                return report.error(std::string(error.what()) + "\nChanged in: " +
                                        (changed.empty() ? "none" : join(changed)) + "; not in: " + join(rest(nullptr)) +
                                        ". Fix the cause and run it again where it is missing (a CREATE INDEX "
                                        "CONCURRENTLY that failed leaves an invalid index behind: drop it first).",
                                    error.region());
            }
        }
    } else {
        // Until the first COMMIT nothing has changed anywhere, and a failure
        // rolls every region back. After it the change cannot be taken
        // back: the other regions commit still, so that only the links into
        // the regions whose COMMIT failed wait, not those into every region
        // after them.
        std::vector<std::string> unknown;
        std::optional<DbError> first_error;
        for (auto& r : regions) {
            try {
                r.db->exec("COMMIT");
                r.committed = true;
                changed.push_back(r.region->name);
            } catch (const DbError& error) {
                // A COMMIT that failed may still have committed (a connection
                // lost after the server did): that region is unknown.
                unknown.push_back(r.region->name);
                if (!first_error) first_error = error;
                if (changed.empty()) {
                    rollback();
                    const std::vector<std::string> others = rest(&r);
                    outcome({}, others);
                    return report.error(std::string(error.what()) + "\nThe change is in no region, unknown in " +
                                            r.region->name + (others.empty() ? "" : ", and rolled back in " + join(others)) +
                                            ": look there, then run it again.",
                                        error.region());
                }
            }
        }
        if (first_error) {
            outcome(changed, unknown);
            return report.error(std::string(first_error->what()) + "\nThe change is committed in " + join(changed) +
                                    ", unknown in " + join(unknown) +
                                    ": look there, and run it where it is missing (causalctl status names the "
                                    "links that wait for it).",
                                first_error->region());
        }
    }
    report.add("changed", json::array(json_strings(changed)));
    return report.done(kOk, true, "changed in every region: " + join(changed) + "\n");
}

}  // namespace causalctl
