// causalctl failover and rejoin.
//
// failover REGION: fences REGION with a new epoch, only with the votes of a
// majority of the mesh's regions (causal.vote_fence, the rules of
// src/core/fencing.hpp), then carries the fence to every region it reaches
// (causal.carry_fence) rather than wait for replication: REGION's clients
// get 5C001 wherever the fence is, and its writes from the fenced epoch are
// orphans everywhere. A fence that landed somewhere is carried on by running
// failover again.
//
// rejoin REGION: waits until REGION has everything the survivors had and
// they have everything it wrote, then lifts the fence with a new epoch.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"
#include "regions.hpp"

namespace causalctl {


int failover(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& target = options.target;
    const auto started = Clock::now();
    Operation op("failover", mesh, options, out, err);
    // The majority is judged below, against causal.regions.
    if (auto code = op.begin(Operation::Reach::any)) return *code;
    const std::vector<Reached*>& voters = op.others;  // the target gets no vote
    std::vector<Reached*>& everyone = op.everyone;
    const std::vector<std::string>& down = op.down;
    std::vector<std::string> not_carried;  // regions reached that could not be told of the fence, and why
    const auto report = [&](const std::string& epoch, const std::vector<std::pair<std::string, std::string>>& ballots,
                            const std::vector<std::string>& carried_to, bool already) {
        const std::string clients_go_to =
            voters.front()->db->value("SELECT causal.region_for_clients($1)", {target});
        const double took = seconds_since(started);
        std::vector<std::string> votes, carried;
        for (const auto& b : ballots)
            votes.push_back(json::Object().add("region", json::string(b.first)).add("vote", json::string(b.second)).str());
        for (const auto& c : carried_to) carried.push_back(json::string(c));
        std::vector<std::string> missed;
        for (const auto& m : not_carried) missed.push_back(json::string(m));
        op.add("fenced", json::string(target)).add("epoch", epoch).add("not_carried", json::array(missed))
            .add("already", json::boolean(already)).add("votes", json::array(votes))
            .add("carried_to", json::array(carried))
            .add("clients_go_to", clients_go_to.empty() ? json::null() : json::string(clients_go_to))
            .add("fenced_after_s", json::number(took));
        std::ostringstream out;
        if (already)
            out << target << " is already fenced (epoch " << epoch << ")";
        else
            out << "fenced " << target << " at epoch " << epoch << " with " << ballots.size() << " of "
                << mesh.regions().size() << " votes";
        out << " (" << seconds_text(took) << ")\n";
        for (const auto& b : ballots) out << "  " << b.first << ": " << b.second << '\n';
        if (!carried_to.empty()) out << "carried the fence to " << join(carried_to) << '\n';
        if (not_carried.empty())
            out << "every region reached has the fence"
                << (down.empty() ? "" : " (not reached: " + join(down) + "; replication carries it there)") << '\n';
        else
            for (const auto& m : not_carried) out << "not carried (replication carries it): " << m << '\n';
        if (!clients_go_to.empty())
            out << "send " << target << "'s users to " << clients_go_to << " (the region its 5C001 errors name) and "
                << "causal.catch_up() them there\n";
        return op.done(kOk, true, out.str());
    };
    return op.run([&]() -> int {
        // The voters alone: the target gets no vote.
        if (auto why = lacks_causal_admin(voters)) return op.refuse(*why);
        if (auto why = misnamed(everyone)) return op.refuse(*why);
        // The majority is of causal.regions, which the votes judge against;
        // a partial list of regions must not lower it.
        size_t registered = 0;
        if (!voters.empty())
            registered = voters.front()->db->exec("SELECT count(*) FROM causal.regions").integer(0, 0);
        if (!voters.empty() && registered != mesh.regions().size())
            return op.refuse("causal.regions has " + std::to_string(registered) + " regions, the configuration " +
                              std::to_string(mesh.regions().size()) + ": give every region of the mesh");
        const size_t needed = majority(mesh.regions().size());
        if (voters.size() < needed)
            return op.refuse("fencing " + target + " needs " + std::to_string(needed) + " of the " +
                              std::to_string(mesh.regions().size()) + " regions to agree; " +
                              std::to_string(voters.size()) + " other than it can be reached" +
                              (down.empty() ? "" : " (unreachable: " + join(down) + ")"));
        // A fence that landed already (a failover before this one, which
        // could not reach every survivor): finish it.
        std::vector<std::string> carried_to;
        if (const long long epoch = carry_newest_fence(everyone, target, carried_to, &not_carried); epoch >= 0)
            return report(std::to_string(epoch), {}, carried_to, true);
        // A region that, with the peers still hearing it, makes a majority is
        // alive and connected: fencing it is a choice. --wait gives it the
        // time to count as dead: cut off from the majority, by the rule a
        // region fences itself by.
        if (!options.force) {
            const auto dead_by = Clock::now() + std::chrono::duration<double>(options.wait_s.value_or(0));
            for (;;) {
                std::vector<std::string> hearing;
                for (auto* v : voters) {
                    std::string ago = v->db->value("SELECT heard_ms_ago FROM causal.liveness() WHERE region = $1", {target});
                    std::optional<int64_t> ago_ms;
                    if (!ago.empty()) ago_ms = std::llround(number_from(v->region->name, ago, "heard_ms_ago"));
                    if (heard_within(ago_ms, std::llround(options.dead_after_s * 1000)))
                        hearing.push_back(v->region->name + " (" + ago + " ms ago)");
                }
                if (cut_off(mesh.regions().size(), hearing.size())) break;
                if (Clock::now() >= dead_by)
                    return op.refuse(target + " is alive: " + join(hearing) + " heard from it within " +
                                      seconds_text(options.dead_after_s) +
                                      ". Use --wait SECONDS to wait until it counts as dead, --force to fence it anyway.");
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
        // Votes, against the configuration most voters see. A voter that
        // has not caught up with a recent change sees another one: retry
        // while replication converges.
        std::vector<std::pair<std::string, std::string>> ballots;  // voter, answer
        size_t yes = 0;
        std::string view;
        Reached* applier = nullptr;
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        for (;;) {
            ballots.clear();
            yes = 0;
            applier = nullptr;
            std::map<std::string, size_t> views;
            for (auto* v : voters) ++views[v->db->value("SELECT causal.mesh_view()")];
            view = std::max_element(views.begin(), views.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; })->first;
            for (auto* v : voters) {
                std::string answer = v->db->value("SELECT causal.vote_fence($1, $2)", {target, view});
                ballots.emplace_back(v->region->name, answer);
                if (answer == "yes") {
                    ++yes;
                    if (applier == nullptr) applier = v;
                }
            }
            if (yes >= needed) break;
            bool other_view = false;
            for (const auto& b : ballots) other_view = other_view || b.second.find("another configuration") != std::string::npos;
            if (!other_view || Clock::now() >= deadline) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (yes < needed) {
            std::string why = "fencing " + target + " got " + std::to_string(yes) + " of the " +
                              std::to_string(needed) + " votes it needs:";
            for (const auto& b : ballots) why += "\n  " + b.first + ": " + b.second;
            if (yes > 0)
                why += "\nThe yes votes stay pending (causal.fence_votes) until " + target +
                       " is fenced; each of those regions votes for no other fence meanwhile. If this failover is "
                       "abandoned, delete them there once no operator will apply it.";
            return op.refuse(why);
        }
        // Applied only where the configuration is still the one voted on,
        // then carried to every region reached.
        const std::string epoch = applier->db->value("SELECT (causal.apply_fence($1, $2)).epoch", {target, view});
        carry_newest_fence(everyone, target, carried_to, &not_carried);
        std::vector<std::pair<std::string, std::string>> yes_ballots;
        for (const auto& b : ballots)
            if (b.second == "yes") yes_ballots.push_back(b);
        return report(epoch, yes_ballots, carried_to, false);
    });
}

int rejoin(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& target = options.target;
    const auto started = Clock::now();
    Operation op("rejoin", mesh, options, out, err);
    if (auto code = op.begin(Operation::Reach::target_and_majority, "lift a fence")) return *code;
    Reached* region = op.target;
    const std::vector<Reached*>& survivors = op.others;
    std::vector<Reached*>& everyone = op.everyone;
    const double timeout = options.wait_s.value_or(60);
    return op.run([&]() -> int {
        if (auto why = lacks_causal_admin(everyone)) return op.refuse(*why);
        if (auto why = misnamed(everyone)) return op.refuse(*why);
        // Every survivor, and the region itself, must hold the fence first:
        // lifting it is a change of that state. Where it has not arrived
        // (a region whose links are down), it is carried there.
        std::vector<std::string> carried_to;
        if (carry_newest_fence(everyone, target, carried_to) < 0)
            return op.refuse(target + " is not fenced: failover fences it");
        // A link whose slot is gone can never deliver what it held: the
        // region cannot catch up by replication, only be rebuilt.
        std::vector<std::string> lost;
        for (auto* s : survivors) {
            const std::pair<Connection*, std::string> ends[] = {
                {s->db.get(), link_name(s->region->name, target)}, {region->db.get(), link_name(target, s->region->name)}};
            for (const auto& [db, slot] : ends) {
                const std::string wal_status =
                    db->value("SELECT coalesce((SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1), 'missing')",
                              {slot});
                if (wal_status == "lost" || wal_status == "missing")
                    lost.push_back("slot " + slot + " in " + db->region() + " is " + wal_status);
            }
        }
        if (!lost.empty())
            return op.refuse(join(lost) + ": " + target + " cannot catch up by replication. Rebuild it: causalctl reseed " +
                              target);
        // Caught up both ways: each survivor's slot for the region has
        // reached where that survivor's WAL was, and each of the region's
        // slots for a survivor has reached where the region's WAL was.
        const auto deadline =
            Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
        std::vector<std::string> outgoing;
        for (auto* s : survivors) {
            outgoing.push_back(link_name(target, s->region->name));
            if (auto behind = slots_behind(*s->db, {link_name(s->region->name, target)}, deadline))
                return op.refuse("link " + *behind + " has not caught up within " + seconds_text(timeout) +
                                  " (is replication running? see causalctl status)");
        }
        if (auto behind = slots_behind(*region->db, outgoing, deadline))
            return op.refuse("link " + *behind + " has not caught up within " + seconds_text(timeout) +
                              " (is replication running? see causalctl status)");
        const double caught_up_s = seconds_since(started);
        Connection& applier = *survivors.front()->db;
        const std::string epoch = applier.value("SELECT epoch + 1 FROM causal.regions WHERE region = $1", {target});
        applier.exec("SELECT causal.unfence_region($1, $2::bigint)", {target, epoch});
        const std::string active_sql =
            "SELECT coalesce(bool_or(state = 'active' AND epoch = $2::bigint), false) FROM causal.regions WHERE region = $1";
        bool active = false;
        for (const auto until = Clock::now() + std::chrono::duration<double>(timeout);;) {
            active = true;
            for (auto* r : everyone) active = active && r->db->value(active_sql, {target, epoch}) == "t";
            if (active || Clock::now() >= until) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        const double took = seconds_since(started);
        op.add("rejoined", json::string(target)).add("epoch", epoch).add("caught_up_after_s", json::number(caught_up_s))
            .add("active_everywhere_after_s", json::number(took));
        return op.done(active ? kOk : kAttention, active,
                       target + " caught up (" + seconds_text(caught_up_s) + ") and rejoined at epoch " + epoch +
                           (active ? "; every region sees it active" : "; not every region sees it active yet") +
                           " (" + seconds_text(took) + ")\n");
    });
}

}  // namespace causalctl
