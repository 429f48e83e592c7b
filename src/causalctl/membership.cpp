// causalctl remove and reseed: a region leaves the mesh for good, or is
// rebuilt from its peers.
//
// remove REGION: its links go from every region (the subscriptions, and the
// slots that hold WAL for it), and its registration (causal.unregister_region,
// in every survivor: the majority is counted over the rest). It must be
// fenced first (failover): its clients must be writing nowhere the mesh
// reads. When it can be reached, what it wrote reaches the survivors first;
// when it cannot, whatever it wrote that no survivor received is lost with
// it, and remove says so and wants --force.
//
// reseed REGION: a fenced region whose links cannot bring it back (a slot
// lost to max_slot_wal_keep_size, or the region restored from a backup or a
// dump, with its source's subscriptions): every link to and from it is made
// anew, copying every row each side holds (the apply path keeps one of
// each message), then it rejoins.

#include <algorithm>
#include <chrono>
#include <ostream>
#include <thread>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"
#include "regions.hpp"

namespace causalctl {


int remove(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& target = options.target;
    std::vector<std::string> down;
    std::vector<Reached> all = reach(mesh, options, down);
    Reached* region = nullptr;  // the region leaving, when given and reachable
    std::vector<Reached*> survivors, everyone;
    for (auto& r : all) {
        everyone.push_back(&r);
        if (r.region->name == target) region = &r;
        else survivors.push_back(&r);
    }
    std::vector<std::string> survivors_down;
    for (const auto& name : down)
        if (name != target) survivors_down.push_back(name);
    if (!survivors_down.empty())
        return refuse(options, out, err, "remove",
                      "every other region must be reachable to drop its links to " + target + "; unreachable: " +
                          join(survivors_down));
    if (survivors.empty()) return refuse(options, out, err, "remove", "no region would remain");
    try {
        if (auto why = lacks_superuser(everyone, "remove")) return refuse(options, out, err, "remove", *why);
        if (auto why = misnamed(everyone)) return refuse(options, out, err, "remove", *why);
        // Another region whose objects would have the same names.
        for (const auto& r : mesh.regions())
            if (r.name != target && link_name(r.name, "") == link_name(target, ""))
                return refuse(options, out, err, "remove",
                              "\"" + target + "\" names the objects of region " + r.name + ": remove " + r.name +
                                  " by its own name");
        // Fenced, as the survivors see it: its clients write nowhere the
        // mesh reads. Not even --force removes an active region.
        std::vector<std::string> carried_to;
        if (carry_newest_fence(everyone, target, carried_to) < 0 &&
            survivors.front()->db->value("SELECT count(*) FROM causal.regions WHERE region = $1", {target}) != "0")
            return refuse(options, out, err, "remove",
                          target + " is active: fence it first (causalctl failover " + target +
                              "), so that its clients stop writing where the mesh no longer reads");
        if (region == nullptr && !options.force)
            return refuse(options, out, err, "remove",
                          target + " cannot be reached: whatever it wrote that no other region received is lost with "
                                   "it (messages acknowledged by causal.await_replicated() are not). --force to "
                                   "remove it anyway");
        // Reachable: what it wrote, its orphans included, reaches the others first.
        std::vector<std::string> outgoing;
        for (auto* s : survivors) outgoing.push_back(link_name(target, s->region->name));
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(options.wait_s.value_or(60)));
        if (region != nullptr && slots_behind(*region->db, outgoing, deadline) && !options.force)
            return refuse(options, out, err, "remove",
                          "the survivors have not received everything " + target + " wrote within " +
                              seconds_text(options.wait_s.value_or(60)) +
                              " (see causalctl status); --force to remove it anyway");
        std::vector<std::string> done;
        // The subscriptions first, everywhere, then the slots they used.
        for (auto* s : survivors) {
            drop_subscription(*s->db, link_name(target, s->region->name));
            if (region != nullptr) drop_subscription(*region->db, link_name(s->region->name, target));
        }
        for (auto* s : survivors) {
            drop_slot(*s->db, link_name(s->region->name, target));
            if (region != nullptr) drop_slot(*region->db, link_name(target, s->region->name));
            s->db->exec("SELECT causal.unregister_region($1)", {target});
            done.push_back(s->region->name);
        }
        if (options.json) {
            std::vector<std::string> names;
            for (const auto& d : done) names.push_back(json::string(d));
            out << json::Object().add("ok", "true").add("removed", json::string(target))
                       .add("from", json::array(names)).add("reached", json::boolean(region != nullptr)).str() << '\n';
        } else {
            out << "removed " << target << " from " << join(done) << ": its links, the WAL kept for it, its registration"
                << (region != nullptr ? "; it holds no link to them either" : "") << '\n'
                << "the mesh is " << done.size() << " regions: take " << target << " out of causalctl's configuration\n";
        }
        return kOk;
    } catch (const DbError& error) {
        return failed(options, out, err, "remove", error);
    }
}

int reseed(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& target = options.target;
    if (!mesh.find(target)) {
        err << "causalctl reseed: \"" << target << "\" is not one of the regions given\n";
        return kUsage;
    }
    std::vector<std::string> down;
    std::vector<Reached> all = reach(mesh, options, down);
    if (!down.empty())
        return refuse(options, out, err, "reseed", "every region must be reachable; unreachable: " + join(down));
    std::vector<Reached*> everyone;
    Reached* region = nullptr;
    std::vector<Reached*> survivors;
    for (auto& r : all) {
        everyone.push_back(&r);
        if (r.region->name == target) region = &r;
        else survivors.push_back(&r);
    }
    try {
        if (auto why = lacks_superuser(everyone, "reseed")) return refuse(options, out, err, "reseed", *why);
        if (auto why = misnamed(survivors)) return refuse(options, out, err, "reseed", *why);
        std::vector<std::string> carried_to;
        if (carry_newest_fence(everyone, target, carried_to) < 0)
            return refuse(options, out, err, "reseed",
                          target + " is not fenced: reseed rebuilds a region the others failed over (causalctl "
                                   "failover " + target + ")");
        // Every link to and from it goes, with the subscriptions a restored
        // region brought from its source, and every slot of pg_causal's in it.
        // A restored region's subscriptions are its source's links (named
        // causal_<from>_to_<source>): those of any region of the mesh go.
        std::string names = "{";
        for (const auto& from : mesh.regions())
            for (const auto& to : mesh.regions())
                if (from.name != to.name) names += (names.size() > 1 ? "," : "") + link_name(from.name, to.name);
        names += "}";
        Result subscriptions = region->db->exec("SELECT quote_ident(subname) FROM pg_subscription WHERE subname = ANY ($1::text[])"
                                                " AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                                                {names});
        for (int i = 0; i < subscriptions.rows(); ++i) drop_subscription(*region->db, subscriptions.text(i, 0));
        for (auto* s : survivors) drop_subscription(*s->db, link_name(target, s->region->name));
        Result slots = region->db->exec("SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY ($1::text[])"
                                        " AND database = current_database()", {names});
        for (int i = 0; i < slots.rows(); ++i) drop_slot(*region->db, slots.text(i, 0));
        for (auto* s : survivors) drop_slot(*s->db, link_name(s->region->name, target));
        if (!options.json)
            out << "dropped every link to and from " << target << (carried_to.empty() ? "" : "; carried its fence to " + join(carried_to))
                << '\n';
    } catch (const DbError& error) {
        return failed(options, out, err, "reseed", error);
    }
    // init makes the links anew, each copying what its publisher holds.
    Options quiet = options;
    const int made = init(mesh, quiet, options.json ? err : out, err);
    if (made != kOk) {
        err << "causalctl reseed: init did not complete the links (exit " << made << ")\n";
        return made;
    }
    // The copies done (every table of every link ready), then rejoin waits
    // for the streams to catch up and lifts the fence.
    try {
        const auto deadline = Clock::now() + std::chrono::duration<double>(options.wait_s.value_or(120));
        for (auto* r : everyone) {
            while (r->db->value("SELECT count(*) FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid"
                                " WHERE s.subname LIKE 'causal\\_%' AND sr.srsubstate <> 'r'") != "0") {
                if (Clock::now() >= deadline)
                    return refuse(options, out, err, "reseed",
                                  "the copies into " + r->region->name + " have not finished within " +
                                      seconds_text(options.wait_s.value_or(120)) +
                                      " (see causalctl status); run causalctl rejoin " + target + " once they have");
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
    } catch (const DbError& error) {
        return failed(options, out, err, "reseed", error);
    }
    return rejoin(mesh, options, out, err);
}

}  // namespace causalctl
