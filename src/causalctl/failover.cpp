// causalctl failover and rejoin.
//
// failover REGION: fences REGION with a new epoch, only with the votes of a
// majority of the mesh's regions (causal.vote_fence, the rules of
// src/core/fencing.hpp). The fence replicates; once the survivors have it,
// REGION's clients get 5C001 wherever the fence has reached, and its writes
// from the fenced epoch are orphans everywhere.
//
// rejoin REGION: waits until REGION has everything the survivors had and
// they have everything it wrote, then lifts the fence with a new epoch.

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <thread>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"

namespace causalctl {

namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(double s) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.3g s", s);
    return buffer;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Reached {
    const Region* region;
    std::unique_ptr<Connection> db;
};

// Connects to every region it can; the others are listed in `down`.
std::vector<Reached> reach(const Mesh& mesh, const Options& options, std::vector<std::string>& down) {
    std::vector<Reached> up;
    for (const Region& region : mesh.regions()) {
        try {
            up.push_back({&region, std::make_unique<Connection>(region.name, region.dsn, options.connect_timeout_s)});
        } catch (const DbError&) {
            down.push_back(region.name);
        }
    }
    return up;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

int refuse(const Options& options, std::ostream& out, const std::string& command, const std::string& why) {
    if (options.json)
        out << json::Object().add("ok", "false").add("refused", json::string(why)).str() << '\n';
    else
        out << "causalctl " << command << ": refused: " << why << "\nNothing was changed.\n";
    return kRefused;
}

// Fencing and lifting a fence are causal_admin's (superusers are members of
// every role): said up front and by name, rather than as the permission error
// of whichever statement comes first, with some votes already cast.
std::optional<std::string> lacks_causal_admin(const std::vector<Reached>& regions) {
    std::vector<std::string> lacking;
    for (const auto& r : regions)
        if (r.db->value("SELECT pg_has_role('causal_admin', 'MEMBER')::text") != "true") lacking.push_back(r.region->name);
    if (lacking.empty()) return std::nullopt;
    return "the role causalctl connects as is not a member of causal_admin in " + join(lacking) +
           " (GRANT causal_admin TO it there: roles are not replicated)";
}

// Polls `sql` (which returns 't' or 'f') in every connection until all say
// 't' or the time is up.
bool wait_everywhere(std::vector<Reached>& regions, const std::string& sql,
                     const std::vector<std::optional<std::string>>& params, double timeout_s) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
        bool all = true;
        for (auto& r : regions) all = all && r.db->value(sql, params) == "t";
        if (all) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

int failover(const Mesh& mesh, const Options& options, std::ostream& out) {
    const std::string& target = options.target;
    if (!mesh.find(target)) {
        out << "causalctl failover: \"" << target << "\" is not one of the regions given\n";
        return kUsage;
    }
    const auto started = Clock::now();
    std::vector<std::string> down;
    std::vector<Reached> all = reach(mesh, options, down);
    std::vector<Reached> voters;
    for (auto& r : all)
        if (r.region->name != target) voters.push_back(std::move(r));
    try {
        // The voters alone: the target gets no statement.
        if (auto why = lacks_causal_admin(voters)) return refuse(options, out, "failover", *why);
        // The majority is of causal.regions, which the votes judge against;
        // a partial list of regions must not lower it.
        size_t registered = 0;
        if (!voters.empty())
            registered = std::stoul(voters.front().db->value("SELECT count(*) FROM causal.regions"));
        if (!voters.empty() && registered != mesh.regions().size())
            return refuse(options, out, "failover",
                          "causal.regions has " + std::to_string(registered) + " regions, the configuration " +
                              std::to_string(mesh.regions().size()) + ": give every region of the mesh");
        const size_t needed = mesh.majority();
        if (voters.size() < needed)
            return refuse(options, out, "failover",
                          "fencing " + target + " needs " + std::to_string(needed) + " of the " +
                              std::to_string(mesh.regions().size()) + " regions to agree; " +
                              std::to_string(voters.size()) + " other than it can be reached" +
                              (down.empty() ? "" : " (unreachable: " + join(down) + ")"));
        // A region that, with the peers still hearing it, makes a majority is
        // alive and connected: fencing it is a choice.
        if (!options.force) {
            std::vector<std::string> hearing;
            for (auto& v : voters) {
                std::string ago = v.db->value("SELECT heard_ms_ago FROM causal.liveness() WHERE region = $1", {target});
                if (!ago.empty() && std::stod(ago) < options.dead_after_s * 1000)
                    hearing.push_back(v.region->name + " (" + ago + " ms ago)");
            }
            if (hearing.size() + 1 >= needed)
                return refuse(options, out, "failover",
                              target + " is alive: " + join(hearing) + " heard from it within " +
                                  seconds_text(options.dead_after_s) + ". Use --force to fence it anyway.");
        }
        // Votes, against the configuration most voters see. A voter that
        // has not caught up with a recent change sees another one: retry
        // while replication converges.
        std::vector<std::pair<std::string, std::string>> ballots;  // voter, answer
        size_t yes = 0, already = 0;
        std::string view;
        Reached* applier = nullptr;
        const auto deadline = Clock::now() + std::chrono::duration<double>(options.wait_s > 0 ? options.wait_s : 10);
        for (;;) {
            ballots.clear();
            yes = already = 0;
            applier = nullptr;
            std::map<std::string, size_t> views;
            for (auto& v : voters) ++views[v.db->value("SELECT causal.mesh_view()")];
            view = std::max_element(views.begin(), views.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; })->first;
            for (auto& v : voters) {
                std::string answer = v.db->value("SELECT causal.vote_fence($1, $2)", {target, view});
                ballots.emplace_back(v.region->name, answer);
                if (answer == "yes") {
                    ++yes;
                    if (applier == nullptr) applier = &v;
                }
                already += answer == "already fenced";
            }
            if (yes >= needed || already >= needed) break;
            bool other_view = false;
            for (const auto& b : ballots) other_view = other_view || b.second.find("another configuration") != std::string::npos;
            if (!other_view || Clock::now() >= deadline) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (already >= needed) {
            if (options.json)
                out << json::Object().add("ok", "true").add("fenced", json::string(target)).add("already", "true").str() << '\n';
            else
                out << target << " is already fenced in a majority of regions\n";
            return kOk;
        }
        if (yes < needed) {
            std::string why = "fencing " + target + " got " + std::to_string(yes) + " of the " +
                              std::to_string(needed) + " votes it needs:";
            for (const auto& b : ballots) why += "\n  " + b.first + ": " + b.second;
            if (yes > 0)
                why += "\nThe yes votes stay pending (causal.fence_votes) until " + target +
                       " is fenced; each of those regions votes for no other fence meanwhile. If this failover is "
                       "abandoned, delete them there once no operator will apply it.";
            return refuse(options, out, "failover", why);
        }
        // Applied only where the configuration is still the one voted on.
        Result fenced = applier->db->exec("SELECT (causal.apply_fence($1, $2)).epoch", {target, view});
        const std::string epoch = fenced.text(0, 0);
        const double fenced_s = seconds_since(started);
        const bool everywhere = wait_everywhere(
            voters, "SELECT coalesce(bool_or(state = 'fenced' AND epoch = $2::bigint), false) FROM causal.regions WHERE region = $1",
            {target, epoch}, 10);
        const double serving_s = seconds_since(started);
        if (options.json) {
            std::vector<std::string> votes;
            for (const auto& b : ballots)
                votes.push_back(json::Object().add("region", json::string(b.first)).add("vote", json::string(b.second)).str());
            out << json::Object().add("ok", "true").add("fenced", json::string(target))
                       .add("epoch", epoch).add("votes", json::array(votes))
                       .add("fenced_after_s", json::number(fenced_s))
                       .add("survivors_fenced_after_s", everywhere ? json::number(serving_s) : json::null()).str()
                << '\n';
        } else {
            out << "fenced " << target << " at epoch " << epoch << " with " << yes << " of " << mesh.regions().size()
                << " votes (" << seconds_text(fenced_s) << ")\n";
            for (const auto& b : ballots) out << "  " << b.first << ": " << b.second << '\n';
            if (everywhere)
                out << "every survivor has the fence (" << seconds_text(serving_s) << "); send " << target << "'s users to "
                    << applier->region->name << " and causal.catch_up() them there\n";
            else
                out << "not every survivor has the fence yet: see causalctl status\n";
        }
        return everywhere ? kOk : kAttention;
    } catch (const DbError& error) {
        out << "causalctl failover: " << error.what() << '\n';
        return kUnreachable;
    }
}

int rejoin(const Mesh& mesh, const Options& options, std::ostream& out) {
    const std::string& target = options.target;
    if (!mesh.find(target)) {
        out << "causalctl rejoin: \"" << target << "\" is not one of the regions given\n";
        return kUsage;
    }
    const auto started = Clock::now();
    std::vector<std::string> down;
    std::vector<Reached> all = reach(mesh, options, down);
    Reached* region = nullptr;
    std::vector<Reached*> survivors;
    for (auto& r : all) {
        if (r.region->name == target) region = &r;
        else survivors.push_back(&r);
    }
    if (region == nullptr) return refuse(options, out, "rejoin", target + " cannot be reached");
    if (survivors.size() + 1 < mesh.majority())
        return refuse(options, out, "rejoin", "a majority must be reachable to lift a fence; unreachable: " + join(down));
    const double timeout = options.wait_s > 0 ? options.wait_s : 60;
    try {
        if (auto why = lacks_causal_admin(all)) return refuse(options, out, "rejoin", *why);
        // Every survivor, and the region itself, must see the fence first:
        // lifting it is a change of that state.
        const std::string fenced_sql =
            "SELECT coalesce(bool_or(state = 'fenced'), false) FROM causal.regions WHERE region = $1";
        const auto deadline = Clock::now() + std::chrono::duration<double>(timeout);
        auto everywhere = [&](const std::string& sql, const std::vector<std::optional<std::string>>& params) {
            for (;;) {
                bool ok = region->db->value(sql, params) == "t";
                for (auto* s : survivors) ok = ok && s->db->value(sql, params) == "t";
                if (ok) return true;
                if (Clock::now() >= deadline) return false;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        };
        if (!everywhere(fenced_sql, {target}))
            return refuse(options, out, "rejoin",
                          target + " is not fenced in every region yet (or not at all): failover fences it");
        // Caught up both ways: each survivor's slot for the region has
        // reached where that survivor's WAL was, and each of the region's
        // slots for a survivor has reached where the region's WAL was.
        std::vector<std::pair<Connection*, std::pair<std::string, std::string>>> marks;  // db, (slot, lsn)
        for (auto* s : survivors) {
            marks.push_back({s->db.get(), {link_name(s->region->name, target), s->db->value("SELECT pg_current_wal_insert_lsn()::text")}});
            marks.push_back({region->db.get(), {link_name(target, s->region->name), region->db->value("SELECT pg_current_wal_insert_lsn()::text")}});
        }
        for (auto& [db, mark] : marks) {
            for (;;) {
                std::string done = db->value(
                    "SELECT coalesce(bool_or(confirmed_flush_lsn >= $2::pg_lsn), false) FROM pg_replication_slots "
                    "WHERE slot_name = $1",
                    {mark.first, mark.second});
                if (done == "t") break;
                if (Clock::now() >= deadline)
                    return refuse(options, out, "rejoin",
                                  "link " + mark.first + " has not caught up within " + seconds_text(timeout) +
                                      " (is replication running? see causalctl status)");
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
        const double caught_up_s = seconds_since(started);
        Connection& applier = *survivors.front()->db;
        const std::string epoch = applier.value("SELECT epoch + 1 FROM causal.regions WHERE region = $1", {target});
        applier.exec("SELECT causal.unfence_region($1, $2::bigint)", {target, epoch});
        const bool active = everywhere(
            "SELECT coalesce(bool_or(state = 'active' AND epoch = $2::bigint), false) FROM causal.regions WHERE region = $1",
            {target, epoch});
        if (options.json)
            out << json::Object().add("ok", json::boolean(active)).add("rejoined", json::string(target))
                       .add("epoch", epoch).add("caught_up_after_s", json::number(caught_up_s))
                       .add("active_everywhere_after_s", json::number(seconds_since(started))).str() << '\n';
        else
            out << target << " caught up (" << seconds_text(caught_up_s) << ") and rejoined at epoch " << epoch
                << (active ? "; every region sees it active" : "; not every region sees it active yet") << " ("
                << seconds_text(seconds_since(started)) << ")\n";
        return active ? kOk : kAttention;
    } catch (const DbError& error) {
        out << "causalctl rejoin: " << error.what() << '\n';
        return kUnreachable;
    }
}

}  // namespace causalctl
