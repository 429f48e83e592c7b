// causalctl verify: do the regions converge? Every region merges each
// conversation of each message table with causal.merge and hashes the
// history (msg_id, hlc, statuses, in order, and which messages are
// deleted); the fencing state is hashed too. Regions converge when every
// digest matches everywhere. Differences are listed with the messages one
// region has and another lacks.
//
// verify runs as a superuser, so it reads only what pg_causal vouches for:
// the plain tables causal.message_tables() lists as well formed (never a
// view, never a table whose triggers are someone else's), and it turns the
// conversation key into text with the type's output function (format's
// %s), never with a cast, which the key type's owner could have written.

#include <chrono>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <thread>
#include <tuple>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"

namespace causalctl {

namespace {

struct Digest {
    long long messages = 0;
    std::string hash;
    bool operator==(const Digest& o) const { return messages == o.messages && hash == o.hash; }
};

// (table, conversation) -> region -> digest
using Digests = std::map<std::pair<std::string, std::string>, std::map<std::string, Digest>>;

// Every message table, its conversation column, and what is wrong with it.
const char* kTables = "SELECT relid::text, conversation, problem FROM causal.message_tables()";

std::string quote_ident(Connection& db, const std::string& name) {
    return db.value("SELECT quote_ident($1)", {name});
}

std::string conversation_text(const std::string& column) { return "format('%s', " + column + ")"; }

// Per conversation: the merged history (msg_id, hlc, statuses, in order)
// and the rows as stored (every copy's stamp, deletions), hashed.
std::string history_query(const std::string& table, const std::string& column, bool one_conversation) {
    return "SELECT g.c, count(*), md5(string_agg(h.msg_id::text || ' ' || h.hlc::text || ' ' ||"
           "       h.delivered::text || h.concurrent::text || h.orphan::text, ',' ORDER BY h.position)"
           "       || ' stored ' || g.stored)"
           "  FROM (SELECT " + conversation_text(column) + " AS c,"
           "               causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS m,"
           "               md5(string_agg(msg_id::text || ' ' || hlc::text || ' ' || copies::text || ' '"
           "                              || (deleted_at IS NOT NULL)::text, ',' ORDER BY msg_id)) AS stored"
           "          FROM " + table + (one_conversation ? " WHERE " + conversation_text(column) + " = $1" : "") +
           "         GROUP BY 1) g, causal.unnest(g.m) h GROUP BY g.c, g.stored";
}

// Every name the messages of `table` go by (each copy's hlc).
std::string names_of(const std::string& table) {
    return "(SELECT hlc FROM " + table + " UNION ALL SELECT (c).hlc FROM " + table + " m, unnest(m.copies) c)";
}

// Deps of `table`'s messages (any copy's) that name no message here:
// conversation, dep.
std::string unresolved_query(const std::string& table, const std::string& column) {
    return "SELECT DISTINCT " + conversation_text(column) + ", d::text FROM ("
           "  SELECT " + column + ", deps FROM " + table +
           "  UNION ALL SELECT m." + column + ", (c).deps FROM " + table + " m, unnest(m.copies) c) x,"
           "  unnest(x.deps) d WHERE NOT EXISTS (SELECT FROM " + names_of(table) + " n WHERE n.hlc OPERATOR(pg_catalog.=) d)";
}

// One message under several msg_ids: what enabling a populated table
// without key and sent_at in more than one region leaves, each region
// stamping its copy of every row. Only rows such an enable() stamped are
// suspects, as recorded where it ran (causal.stamped_in_place): two messages
// that merely look alike (a user says "hi" twice, in two regions) are two
// messages. Suspects alike in everything but pg_causal's columns, without
// deps, one stamped by each of two or more regions, are one.
struct StampedInPlace {
    std::string region, through;
};
// table -> where and up to which hlc enable() stamped its rows in place
using StampedTables = std::map<std::string, std::vector<StampedInPlace>>;

void read_stamped_in_place(Connection& db, StampedTables& stamped) {
    if (db.value("SELECT to_regclass('causal.stamped_in_place') IS NOT NULL") != "t") return;  // before 0.4.0
    Result rows = db.exec("SELECT message_table::text, region, stamped_through::text FROM causal.stamped_in_place");
    for (int i = 0; i < rows.rows(); ++i) stamped[rows.text(i, 0)].push_back({rows.text(i, 1), rows.text(i, 2)});
}

// The query and its one parameter (each suspect range on a line), or
// nothing when no two regions stamped `table` in place.
std::pair<std::string, std::string> duplicates_query(Connection& db, const std::string& table,
                                                     const std::string& column, const StampedTables& stamped) {
    const auto found = stamped.find(table);
    std::set<std::string> regions;
    std::string ranges;
    if (found != stamped.end())
        for (const auto& s : found->second) {
            if (!regions.insert(s.region).second) continue;
            ranges += s.region + '\t' + s.through + '\n';
        }
    if (regions.size() < 2) return {};
    const std::string body = db.value(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a"
        " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        "   AND a.attname <> ALL (ARRAY(SELECT c.name FROM causal.message_columns() c)) AND quote_ident(a.attname) <> $2",
        {table, column});
    if (body.empty()) return {};
    return {"SELECT " + conversation_text(column) + ", count(DISTINCT msg_id), string_agg(msg_id::text, ' ' ORDER BY msg_id)"
            "  FROM " + table + " m WHERE deleted_at IS NULL AND cardinality(deps) = 0"
            "   AND EXISTS (SELECT FROM unnest(string_to_array(rtrim($1, E'\\n'), E'\\n')) r(line)"
            "                WHERE m.crdb_region = split_part(r.line, E'\\t', 1)"
            "                  AND m.hlc OPERATOR(pg_catalog.<=) split_part(r.line, E'\\t', 2)::causal.hlc)"
            " GROUP BY 1, md5(format('%s', ROW(" + body + ")))"
            " HAVING count(DISTINCT msg_id) > 1 AND count(DISTINCT crdb_region) = count(*)",
            ranges};
}

// What verify reports besides differences: a message table it could not
// read (it goes on with the others), one logical message under several
// msg_ids. Each one fails the check.
using Problems = std::set<std::string>;
// (table, conversation, dep) -> the regions whose messages wait for it
using Waiting = std::map<std::tuple<std::string, std::string, std::string>, std::set<std::string>>;

void collect(Connection& db, const Options& options, const StampedTables& stamped, Digests& digests,
             Problems& problems, Waiting& waiting) {
    const std::string& region = db.region();
    Result tables = db.exec(kTables);
    for (int t = 0; t < tables.rows(); ++t) {
        const std::string table = tables.text(t, 0);
        if (!tables.is_null(t, 2)) {
            problems.insert(region + ": " + table + " cannot be verified: " + tables.text(t, 2));
            continue;
        }
        const std::string column = quote_ident(db, tables.text(t, 1));
        try {
            Result rows = options.conversation
                              ? db.exec(history_query(table, column, true), {*options.conversation})
                              : db.exec(history_query(table, column, false));
            for (int i = 0; i < rows.rows(); ++i)
                digests[{table, rows.text(i, 0)}][region] = Digest{rows.integer(i, 1), rows.text(i, 2)};
            Result unresolved = db.exec(unresolved_query(table, column));
            for (int i = 0; i < unresolved.rows(); ++i)
                waiting[{table, unresolved.text(i, 0), unresolved.text(i, 1)}].insert(region);
            if (const auto [sql, ranges] = duplicates_query(db, table, column, stamped); !sql.empty()) {
                Result twins = db.exec(sql, {ranges});
                for (int i = 0; i < twins.rows(); ++i)
                    problems.insert(region + ": " + table + " conversation " + twins.text(i, 0) + ": one message under " +
                                    twins.text(i, 1) + " msg_ids stamped by different regions (" + twins.text(i, 2) +
                                    "): a populated table enabled without key and sent_at?");
            }
        } catch (const DbError& error) {
            if (error.sqlstate().rfind("08", 0) == 0 || error.sqlstate().empty()) throw;  // the region is gone
            problems.insert(std::string(error.what()) + " (cannot verify " + table + ")");
        }
    }
    // The fencing state converges too: it decides what is an orphan.
    Result state = db.exec(
        "SELECT count(*), md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM ("
        "  SELECT 'r ' || region || ' ' || coalesce(node_id::text, '') || ' ' || epoch || ' ' || state AS x"
        "    FROM causal.regions"
        "  UNION ALL"
        "  SELECT 'f ' || region || ' ' || epoch || ' ' || fenced_at::text || ' ' || coalesce(lifted_at::text, '')"
        "    FROM causal.fences) s");
    digests[{"causal.regions + causal.fences", ""}][region] = Digest{state.integer(0, 0), state.text(0, 1)};
}

struct Difference {
    std::string table, conversation;
    std::map<std::string, Digest> by_region;
    std::map<std::string, std::vector<std::string>> missing;  // region -> msg_ids others have
};

std::vector<Difference> differences(const Digests& digests, const std::vector<std::string>& regions) {
    std::vector<Difference> out;
    for (const auto& [key, by_region] : digests) {
        bool same = by_region.size() == regions.size();
        for (const auto& [_, digest] : by_region) same = same && digest == by_region.begin()->second;
        if (!same) out.push_back(Difference{key.first, key.second, by_region, {}});
    }
    return out;
}

// For the first few differences: which messages each region lacks.
void explain(std::vector<std::unique_ptr<Connection>>& dbs, std::vector<Difference>& diffs) {
    const size_t kExplained = 10;
    for (size_t d = 0; d < diffs.size() && d < kExplained; ++d) {
        Difference& diff = diffs[d];
        if (diff.conversation.empty() && diff.table.rfind("causal.", 0) == 0) continue;
        std::map<std::string, std::set<std::string>> held;
        std::set<std::string> all;
        for (auto& db : dbs) {
            Result tables = db->exec(kTables);
            for (int t = 0; t < tables.rows(); ++t) {
                if (tables.text(t, 0) != diff.table || !tables.is_null(t, 2)) continue;
                Result ids = db->exec("SELECT msg_id::text FROM " + diff.table + " WHERE " +
                                          conversation_text(quote_ident(*db, tables.text(t, 1))) + " = $1",
                                      {diff.conversation});
                for (int i = 0; i < ids.rows(); ++i) {
                    held[db->region()].insert(ids.text(i, 0));
                    all.insert(ids.text(i, 0));
                }
            }
        }
        for (auto& db : dbs)
            for (const auto& id : all)
                if (!held[db->region()].count(id)) diff.missing[db->region()].push_back(id);
    }
}

}  // namespace

int verify(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    std::vector<std::string> names;
    for (const Region& region : mesh.regions()) names.push_back(region.name);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.wait_s.value_or(0));
    std::vector<Difference> diffs;
    Problems problems;
    size_t conversations = 0;
    // Deps no region can resolve: their messages can never be delivered.
    auto never_deliverable = [&](std::vector<std::unique_ptr<Connection>>& dbs, const Waiting& waiting) {
        for (const auto& [key, regions] : waiting) {
            const auto& [table, conversation, dep] = key;
            bool somewhere = false;
            for (auto& db : dbs)
                somewhere = somewhere || db->value("SELECT EXISTS (SELECT FROM " + names_of(table) +
                                                   " n WHERE n.hlc OPERATOR(pg_catalog.=) $1::causal.hlc)",
                                                   {dep}) == "t";
            if (!somewhere)
                problems.insert(table + " conversation " + conversation + ": messages wait for " + dep +
                                ", which no region holds: they can never be delivered");
        }
    };
    int attempts = 0;
    try {
        std::vector<std::unique_ptr<Connection>> dbs;
        for (const Region& region : mesh.regions())
            dbs.push_back(std::make_unique<Connection>(region.name, region.dsn, options.session));
        for (;;) {
            ++attempts;
            Digests digests;
            Waiting waiting;
            problems.clear();
            StampedTables stamped;
            for (auto& db : dbs) read_stamped_in_place(*db, stamped);
            for (auto& db : dbs) collect(*db, options, stamped, digests, problems, waiting);
            never_deliverable(dbs, waiting);
            conversations = digests.size() - 1;
            diffs = differences(digests, names);
            if ((diffs.empty() && problems.empty()) || std::chrono::steady_clock::now() >= deadline) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        explain(dbs, diffs);
    } catch (const DbError& error) {
        if (options.json)
            out << json::Object().add("ok", "false").add("converged", "false").add("region", json::string(error.region()))
                       .add("error", json::string(error.what())).str() << '\n';
        else
            err << "causalctl verify: " << error.what() << "\ncannot tell whether the regions converge\n";
        return kUnreachable;
    }

    if (options.json) {
        std::vector<std::string> diff_json;
        for (const auto& d : diffs) {
            std::vector<std::string> regions;
            for (const auto& name : names) {
                auto found = d.by_region.find(name);
                json::Object o;
                o.add("region", json::string(name))
                    .add("messages", found == d.by_region.end() ? json::number(0LL) : json::number(found->second.messages))
                    .add("digest", found == d.by_region.end() ? json::null() : json::string(found->second.hash));
                std::vector<std::string> missing;
                if (auto m = d.missing.find(name); m != d.missing.end())
                    for (const auto& id : m->second) missing.push_back(json::string(id));
                o.add("missing", json::array(missing));
                regions.push_back(o.str());
            }
            diff_json.push_back(json::Object().add("table", json::string(d.table))
                                    .add("conversation", json::string(d.conversation))
                                    .add("regions", json::array(regions)).str());
        }
        std::vector<std::string> problem_json;
        for (const auto& p : problems) problem_json.push_back(json::string(p));
        out << json::Object().add("ok", json::boolean(diffs.empty() && problems.empty()))
                   .add("converged", json::boolean(diffs.empty() && problems.empty()))
                   .add("conversations", json::number(static_cast<long long>(conversations)))
                   .add("attempts", json::number(static_cast<long long>(attempts)))
                   .add("differences", json::array(diff_json))
                   .add("problems", json::array(problem_json)).str() << '\n';
        return diffs.empty() && problems.empty() ? kOk : kAttention;
    }
    for (const auto& p : problems) out << "problem: " << p << '\n';
    if (diffs.empty() && problems.empty()) {
        out << "converged: " << names.size() << " regions present the same " << conversations
            << " conversation histories and the same fencing state\n";
    } else if (diffs.empty()) {
        out << "the other " << conversations << " conversation histories and the fencing state agree\n";
    } else {
        out << "NOT converged: " << diffs.size() << " difference(s)\n";
        for (const auto& d : diffs) {
            out << "  " << d.table << (d.conversation.empty() ? "" : " conversation " + d.conversation) << '\n';
            for (const auto& name : names) {
                auto found = d.by_region.find(name);
                out << "    " << name << ": ";
                if (found == d.by_region.end()) out << "nothing";
                else out << found->second.messages << " messages, digest " << found->second.hash.substr(0, 12);
                if (auto m = d.missing.find(name); m != d.missing.end() && !m->second.empty()) {
                    out << "; lacks " << m->second.size() << ":";
                    for (size_t i = 0; i < m->second.size() && i < 5; ++i) out << ' ' << m->second[i];
                    if (m->second.size() > 5) out << " ...";
                }
                out << '\n';
            }
        }
    }
    return diffs.empty() && problems.empty() ? kOk : kAttention;
}

}  // namespace causalctl
