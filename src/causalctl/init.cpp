// causalctl init: builds (or completes) the full mesh. Every region gets a
// node id and its region name, registers itself, publishes causal_mesh, and
// subscribes to every other region. Safe to run again: it only adds what is
// missing, and refreshes subscriptions so tables enabled since are carried
// (copying what a region lacks; the apply path drops what it has).

#include <chrono>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"

namespace causalctl {

namespace {

struct Refusal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct RegionSetup {
    const Region* region;
    std::unique_ptr<Connection> db;
    int node_id = -1;
    std::vector<std::string> done;     // what init changed, for the report
    std::vector<std::string> pending;  // links that wait for this region's tables
};

// Every reason this region cannot join the mesh as it is, not just the first.
std::vector<std::string> check_server(RegionSetup& r) {
    Connection& db = *r.db;
    std::vector<std::string> problems;
    const auto problem = [&](const std::string& what) { problems.push_back(r.region->name + ": " + what); };
    std::string preload = db.value("SELECT current_setting('shared_preload_libraries')");
    if (preload.find("pg_causal") == std::string::npos)
        problem("pg_causal is not in shared_preload_libraries (add it and restart)");
    if (db.value("SELECT current_setting('wal_level')") != "logical")
        problem("wal_level is not logical (set it and restart)");
    // The publications and what init asks of them are this version's (a
    // region without the extension gets it below).
    const std::string version = db.value("SELECT extversion FROM pg_extension WHERE extname = 'pg_causal'");
    if (!version.empty() && version != CAUSAL_VERSION)
        problem("its database runs pg_causal " + version + ", this causalctl is " + CAUSAL_VERSION +
                "'s (update every region first: install " CAUSAL_VERSION
                ", restart, ALTER EXTENSION pg_causal UPDATE; or use the causalctl of " + version + ")");
    const std::string foreign_publication =
        db.value("SELECT min(p.pubname) FROM pg_publication p JOIN pg_roles o ON o.oid = p.pubowner"
                 " WHERE p.pubname = ANY (string_to_array($1, ', ')) AND NOT o.rolsuper",
                 {kMeshPublications});
    if (!foreign_publication.empty())
        problem("publication " + foreign_publication +
                " belongs to a role that is not a superuser, which could stop the mesh's replication "
                "(drop it, or have a superuser own it)");
    // The liveness worker writes the heartbeats there: elsewhere, its peers
    // would take this live region for dead. Unset, it is checked with the
    // preload (the setting exists only when pg_causal is loaded).
    const std::string database = db.value("SELECT current_setting('causal.database', true)");
    if (!database.empty() && database != db.value("SELECT current_database()"))
        problem("causal.database is '" + database + "', not the mesh's database '" +
                db.value("SELECT current_database()") + "' (set it and restart)");
    if (db.value("SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user") != "true")
        problem("causalctl init needs a superuser (ALTER SYSTEM, subscriptions)");
    const std::string node_id = db.value("SELECT current_setting('causal.node_id', true)");
    r.node_id = node_id.empty() ? -1 : static_cast<int>(integer_from(r.region->name, node_id, "causal.node_id", -1, 65535));
    std::string configured = db.value("SELECT current_setting('causal.region', true)");
    if (!configured.empty() && configured != r.region->name)
        problem("its causal.region is '" + configured + "'; a region keeps its name");
    return problems;
}

// Sets what ALTER SYSTEM can and waits until this session sees it.
void configure(RegionSetup& r) {
    Connection& db = *r.db;
    if (db.value("SELECT count(*) FROM pg_extension WHERE extname = 'pg_causal'") == "0") {
        db.exec("CREATE EXTENSION pg_causal");
        r.done.push_back("created extension pg_causal");
    }
    bool changed = false;
    if (db.value("SELECT current_setting('causal.node_id')") != std::to_string(r.node_id)) {
        db.exec("ALTER SYSTEM SET causal.node_id = " + std::to_string(r.node_id));
        r.done.push_back("node id " + std::to_string(r.node_id));
        changed = true;
    }
    if (db.value("SELECT current_setting('causal.region')") != r.region->name) {
        db.exec("ALTER SYSTEM SET causal.region = " + quote_literal(r.region->name));
        r.done.push_back("region name set");
        changed = true;
    }
    if (!changed) return;
    db.exec("SELECT pg_reload_conf()");
    for (int i = 0; i < 200; ++i) {
        if (db.value("SELECT current_setting('causal.node_id')") == std::to_string(r.node_id) &&
            db.value("SELECT current_setting('causal.region')") == r.region->name)
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    throw DbError(r.region->name, "the server did not take the new settings after pg_reload_conf()");
}

void publish(RegionSetup& r) {
    Connection& db = *r.db;
    if (db.value("SELECT count(*) FROM causal.regions WHERE region = $1 AND node_id = $2",
                 {r.region->name, std::to_string(r.node_id)}) == "0") {
        db.exec("SELECT causal.register_region($1, $2)", {r.region->name, std::to_string(r.node_id)});
        r.done.push_back("registered");
    }
    // The publication exists since CREATE EXTENSION; this mends one made
    // by an older version (which published DELETE and TRUNCATE) and
    // refuses one that a role other than a superuser owns.
    const std::string before = db.value(
        "SELECT pubdelete OR pubtruncate FROM pg_publication WHERE pubname = 'causal_mesh'");
    try {
        db.exec("SELECT causal.mesh_publication()");
    } catch (const DbError& error) {
        if (error.sqlstate() == "42710") throw Refusal(error.what());
        throw;
    }
    if (before != "f") r.done.push_back("publication causal_mesh publishes inserts and updates only");
}

// The tables `from` publishes that `to` does not have: a subscription (or
// its refresh) would fail on them. Logical replication carries rows, not
// DDL: every region needs the table before it can take its rows.
std::vector<std::string> missing_tables(RegionSetup& from, RegionSetup& to) {
    Result published = from.db->exec(
        "SELECT DISTINCT format('%I.%I', schemaname, tablename) FROM pg_publication_tables"
        " WHERE pubname = ANY (string_to_array($1, ', '))",
        {kMeshPublications});
    std::vector<std::string> missing;
    for (int i = 0; i < published.rows(); ++i)
        if (to.db->value("SELECT to_regclass($1) IS NULL", {published.text(i, 0)}) == "t")
            missing.push_back(published.text(i, 0));
    return missing;
}

// Returns false when the link must wait for tables `to` lacks.
bool subscribe(RegionSetup& to, RegionSetup& from_setup, const std::string& dsn, const std::string& apply_commit,
               bool copy) {
    Connection& db = *to.db;
    const std::string& from = from_setup.region->name;
    const std::string name = link_name(from, to.region->name);
    std::vector<std::string> missing = missing_tables(from_setup, to);
    if (!missing.empty()) {
        std::string list;
        for (const auto& table : missing) list += (list.empty() ? "" : ", ") + table;
        to.pending.push_back("not subscribed to " + from + " yet: it lacks " + list +
                             " (create and causal.enable it here, then run init again)");
        return false;
    }
    Result existing =
        db.exec("SELECT subconninfo, subenabled, subsynccommit, array_to_string(subpublications, ', ')"
                "  FROM pg_subscription WHERE subname = $1",
                {name});
    if (existing.rows() == 0) {
        // copy_data: a region joining a running mesh copies what it lacks
        // from each peer; the apply path drops the copies it already has.
        // (Not for reseed, whose relays pull just what is missing.)
        // synchronous_commit = local (the default): the subscriber flushes
        // what it applied at once and says so, which
        // causal.await_replicated() waits for (Options::apply_commit).
        // Made disabled and given to the replication role before it starts:
        // its workers never run as the superuser who made it (PostgreSQL 15
        // wants a superuser to make it).
        db.exec("CREATE SUBSCRIPTION " + name + " CONNECTION " + quote_literal(dsn) +
                " PUBLICATION " + kMeshPublications + " WITH (copy_data = " + (copy ? "true" : "false") +
                ", synchronous_commit = " +
                quote_literal(apply_commit) + ", slot_name = " + quote_literal(name) + ", enabled = false)");
        db.exec("SELECT count(*) FROM causal.adopt_links()");
        db.exec("ALTER SUBSCRIPTION " + name + " ENABLE");
        to.done.push_back("subscribed to " + from);
        return true;
    }
    if (existing.text(0, 0) != dsn) {
        db.exec("ALTER SUBSCRIPTION " + name + " CONNECTION " + quote_literal(dsn));
        to.done.push_back("new connection to " + from);
    }
    if (existing.text(0, 2) != apply_commit) {
        db.exec("ALTER SUBSCRIPTION " + name + " SET (synchronous_commit = " + quote_literal(apply_commit) + ")");
        to.done.push_back("subscription to " + from + (apply_commit == "local" ? " flushes at once"
                                                                              : " flushes in batches"));
    }
    if (existing.text(0, 3) != kMeshPublications) {
        // A mesh built before the messages had a publication of their own.
        db.exec("ALTER SUBSCRIPTION " + name + " SET PUBLICATION " + kMeshPublications + " WITH (refresh = false)");
        to.done.push_back("subscription to " + from + " takes publications " + kMeshPublications);
    }
    if (!existing.boolean(0, 1)) {
        db.exec("ALTER SUBSCRIPTION " + name + " ENABLE");
        to.done.push_back("enabled subscription to " + from);
    }
    // Tables enabled since the last init join the link, and their rows are
    // copied: that is a change, and said so.
    const std::string tables_before =
        db.value("SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid"
                 " WHERE s.subname = $1", {name});
    db.exec("ALTER SUBSCRIPTION " + name + " REFRESH PUBLICATION WITH (copy_data = true)");
    const std::string tables_added =
        db.value("SELECT count(*) - $2::bigint FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid"
                 " WHERE s.subname = $1", {name, tables_before});
    if (tables_added != "0")
        to.done.push_back("link from " + from + " carries " + tables_added + " more table" +
                          (tables_added == "1" ? "" : "s") + " (copying their rows)");
    return true;
}

}  // namespace

int init(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    if (mesh.regions().size() < 2) {
        err << "causalctl init: a mesh needs at least two regions (--region NAME=DSN, repeated)\n";
        return kUsage;
    }
    std::vector<RegionSetup> setups;
    try {
        // Reach every region and check each before changing any: a mesh
        // half built because one region was down is worse than none. Every
        // problem found is reported at once.
        std::vector<std::string> problems, unreachable;
        for (const Region& region : mesh.regions()) {
            try {
                setups.push_back(RegionSetup{&region, std::make_unique<Connection>(region.name, region.dsn, options.session), -1, {}, {}});
            } catch (const DbError& error) {
                problems.push_back(error.what());
                unreachable.push_back(json::string(region.name));
            }
        }
        for (RegionSetup& r : setups)
            for (auto& p : check_server(r)) problems.push_back(std::move(p));
        if (!problems.empty()) {
            std::string all;
            for (const auto& p : problems) all += (all.empty() ? "" : "\n  ") + p;
            all = problems.size() == 1 ? all : std::to_string(problems.size()) + " problems:\n  " + all;
            if (unreachable.empty()) throw Refusal(all);
            if (options.json)
                out << json::Object().add("ok", "false").add("region", unreachable.front())
                           .add("unreachable", json::array(unreachable)).add("error", json::string(all)).str() << '\n';
            else
                err << "causalctl init: " << all << "\nNothing was changed.\n";
            return kUnreachable;
        }

        std::set<int> used;
        for (const RegionSetup& r : setups) {
            if (r.node_id < 0) continue;
            if (!used.insert(r.node_id).second)
                throw Refusal("two regions have causal.node_id " + std::to_string(r.node_id) +
                              "; node ids break ties between regions and must differ");
        }
        int next = 1;
        for (RegionSetup& r : setups) {
            if (r.node_id >= 0) continue;
            while (used.count(next)) ++next;
            r.node_id = next;
            used.insert(next);
        }
        for (RegionSetup& r : setups) configure(r);
        for (RegionSetup& r : setups) publish(r);
        // The replication role as pg_causal makes it, owner of every link
        // (a mesh made before 0.4.0 had a superuser's): the liveness worker
        // restarts the workers still running as the former owner.
        for (RegionSetup& r : setups) {
            if (r.db->value("SELECT causal.mend_replication_role()::text") == "true")
                r.done.push_back("replication role causal_replicator mended");
            const std::string adopted = r.db->value("SELECT count(*) FROM causal.adopt_links()");
            if (adopted != "0")
                r.done.push_back(adopted + " subscription" + (adopted == "1" ? "" : "s") +
                                 " given to causal_replicator");
        }
        for (RegionSetup& to : setups)
            for (RegionSetup& from : setups)
                if (from.region != to.region)
                    subscribe(to, from, mesh.link_dsn(from.region->name, to.region->name), options.apply_commit,
                              options.copy_new_links);
        // Every link takes each region's own messages now: causal_mesh stops
        // carrying the message tables, which a mesh updated from 0.2.0 kept
        // there until now (causal.mesh_publication()).
        bool subscribed = true;
        for (const RegionSetup& r : setups) subscribed = subscribed && r.pending.empty();
        if (subscribed)
            for (RegionSetup& r : setups) {
                const bool carried = r.db->value("SELECT EXISTS (SELECT FROM pg_publication_tables"
                                                 " WHERE pubname = 'causal_mesh' AND schemaname <> 'causal')") == "t";
                r.db->exec("SELECT causal.mesh_publication(false)");
                if (carried) r.done.push_back("causal_mesh no longer carries the message tables");
            }
    } catch (const Refusal& refusal) {
        if (options.json)
            out << json::Object().add("ok", "false").add("refused", json::string(refusal.what())).str() << '\n';
        else
            err << "causalctl init: refused: " << refusal.what() << "\nNothing was changed.\n";
        return kRefused;
    } catch (const DbError& error) {
        if (options.json)
            out << json::Object().add("ok", "false").add("region", json::string(error.region()))
                       .add("error", json::string(error.what())).str() << '\n';
        else
            err << "causalctl init: " << error.what() << '\n';
        return kUnreachable;
    }

    bool complete = true;
    for (const RegionSetup& r : setups) complete = complete && r.pending.empty();
    if (options.json) {
        std::vector<std::string> regions;
        for (const RegionSetup& r : setups) {
            std::vector<std::string> done;
            for (const auto& d : r.done) done.push_back(json::string(d));
            std::vector<std::string> pending;
            for (const auto& p : r.pending) pending.push_back(json::string(p));
            regions.push_back(json::Object().add("region", json::string(r.region->name))
                                  .add("node_id", json::number(static_cast<long long>(r.node_id)))
                                  .add("changed", json::array(done)).add("pending", json::array(pending)).str());
        }
        out << json::Object().add("ok", json::boolean(complete)).add("regions", json::array(regions)).str() << '\n';
    } else {
        for (const RegionSetup& r : setups) {
            out << r.region->name << " (node " << r.node_id << "): ";
            if (r.done.empty()) out << "nothing to change";
            for (size_t i = 0; i < r.done.size(); ++i) out << (i ? ", " : "") << r.done[i];
            out << '\n';
            for (const auto& p : r.pending) out << "  " << p << '\n';
        }
        if (complete)
            out << "mesh of " << setups.size() << " regions, " << setups.size() * (setups.size() - 1)
                << " links: run `causalctl status` to watch it\n";
        else
            out << "mesh incomplete: some links wait for tables (see above)\n";
    }
    return complete ? kOk : kAttention;
}

}  // namespace causalctl
