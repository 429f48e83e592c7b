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
// anew, then it rejoins. What each side lacks of the other's own rows comes
// by a pull its relay makes from the other (causal.request_pull()), since
// its stable point for it taken before the links are made again: the rows
// below that point are there already, those up to the new slot's start come
// by the pull, the rest by the stream. Where a region's relay is off, or
// runs a version without the request, the new links copy every row each
// side holds instead (the apply path keeps one of each message).

#include <algorithm>
#include <chrono>
#include <ostream>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"
#include "regions.hpp"

namespace causalctl {


int remove(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& target = options.target;
    Operation op("remove", mesh, options, out, err);
    // The region leaving may be left out of the configuration already.
    if (auto code = op.begin(Operation::Reach::all_others, "drop its links to " + target, false)) return *code;
    Reached* region = op.target;  // the region leaving, when given and reachable
    const std::vector<Reached*>& survivors = op.others;
    std::vector<Reached*>& everyone = op.everyone;
    if (survivors.empty()) return op.refuse("no region would remain");
    return op.run([&]() -> int {
        if (auto why = lacks_superuser(everyone, "remove")) return op.refuse(*why);
        if (auto why = misnamed(everyone)) return op.refuse(*why);
        // Another region whose objects would have the same names.
        for (const auto& r : mesh.regions())
            if (r.name != target && link_name(r.name, "") == link_name(target, ""))
                return op.refuse("\"" + target + "\" names the objects of region " + r.name + ": remove " + r.name +
                                  " by its own name");
        // Fenced, as the survivors see it: its clients write nowhere the
        // mesh reads. Not even --force removes an active region.
        std::vector<std::string> carried_to;
        if (carry_newest_fence(everyone, target, carried_to) < 0 &&
            survivors.front()->db->value("SELECT count(*) FROM causal.regions WHERE region = $1", {target}) != "0")
            return op.refuse(target + " is active: fence it first (causalctl failover " + target +
                              "), so that its clients stop writing where the mesh no longer reads");
        if (region == nullptr && !options.force)
            return op.refuse(target + " cannot be reached: whatever it wrote that no other region received is lost with "
                                   "it (messages acknowledged by causal.await_replicated() are not). --force to "
                                   "remove it anyway");
        // Reachable: what it wrote, its orphans included, reaches the others first.
        std::vector<std::string> outgoing;
        for (auto* s : survivors) outgoing.push_back(link_name(target, s->region->name));
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(options.wait_s.value_or(60)));
        if (region != nullptr && slots_behind(*region->db, outgoing, deadline) && !options.force)
            return op.refuse("the survivors have not received everything " + target + " wrote within " +
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
        std::vector<std::string> names;
        for (const auto& d : done) names.push_back(json::string(d));
        op.add("removed", json::string(target)).add("from", json::array(names))
            .add("reached", json::boolean(region != nullptr));
        return op.done(kOk, true,
                       "removed " + target + " from " + join(done) + ": its links, the WAL kept for it, its registration" +
                           (region != nullptr ? "; it holds no link to them either" : "") + "\n" + "the mesh is " +
                           std::to_string(done.size()) + " regions: take " + target +
                           " out of causalctl's configuration\n");
    });
}

// A command's JSON document as another's member: its text without the
// newline, or null when it printed none.
std::string document_of(const std::ostringstream& printed) {
    std::string text = printed.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text.empty() ? json::null() : text;
}

int reseed(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    const std::string& target = options.target;
    Operation op("reseed", mesh, options, out, err);
    if (auto code = op.begin(Operation::Reach::all)) return *code;
    Reached* region = op.target;
    const std::vector<Reached*>& survivors = op.others;
    std::vector<Reached*>& everyone = op.everyone;
    const int dropped = op.run([&]() -> int {
        if (auto why = lacks_superuser(everyone, "reseed")) return op.refuse(*why);
        if (auto why = misnamed(survivors)) return op.refuse(*why);
        std::vector<std::string> carried_to;
        if (carry_newest_fence(everyone, target, carried_to) < 0)
            return op.refuse(target + " is not fenced: reseed rebuilds a region the others failed over (causalctl "
                                      "failover " + target + ")");
        // Every link to and from it goes, with the subscriptions a restored
        // region brought from its source, and every slot of pg_causal's in it.
        // A restored region's subscriptions are its source's links (named
        // causal_<from>_to_<source>): those of any region of the mesh go.
        const std::string names = text_array(link_names(mesh.names()));
        std::vector<std::string> gone;  // "subscription NAME in REGION", "slot NAME in REGION"
        Result subscriptions = region->db->exec("SELECT quote_ident(subname) FROM pg_subscription WHERE subname = ANY ($1::text[])"
                                                " AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                                                {names});
        for (int i = 0; i < subscriptions.rows(); ++i) {
            drop_subscription(*region->db, subscriptions.text(i, 0));
            gone.push_back("subscription " + subscriptions.text(i, 0) + " in " + target);
        }
        for (auto* s : survivors) {
            drop_subscription(*s->db, link_name(target, s->region->name));
            gone.push_back("subscription " + link_name(target, s->region->name) + " in " + s->region->name);
        }
        Result slots = region->db->exec("SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY ($1::text[])"
                                        " AND database = current_database()", {names});
        for (int i = 0; i < slots.rows(); ++i) {
            drop_slot(*region->db, slots.text(i, 0));
            gone.push_back("slot " + slots.text(i, 0) + " in " + target);
        }
        for (auto* s : survivors) {
            drop_slot(*s->db, link_name(s->region->name, target));
            gone.push_back("slot " + link_name(s->region->name, target) + " in " + s->region->name);
        }
        std::vector<std::string> carried, dropped_json;
        for (const auto& c : carried_to) carried.push_back(json::string(c));
        for (const auto& g : gone) dropped_json.push_back(json::string(g));
        op.add("reseeded", json::string(target)).add("carried_to", json::array(carried))
            .add("dropped", json::array(dropped_json));
        if (!op.json())
            out << "dropped every link to and from " << target
                << (carried_to.empty() ? "" : "; carried its fence to " + join(carried_to)) << '\n';
        return kOk;
    });
    if (dropped != kOk) return dropped;
    // What each side lacks, asked of its relay before the links stream again.
    bool pulls = true;
    for (auto* r : everyone)
        pulls = pulls && r->db->value("SELECT to_regprocedure('causal.request_pull(text)') IS NOT NULL"
                                      "   AND current_setting('causal.relay_after')::interval > '0'::interval") == "t";
    if (pulls) {
        for (auto* s : survivors) {
            region->db->exec("SELECT causal.request_pull($1)", {s->region->name});
            s->db->exec("SELECT causal.request_pull($1)", {target});
        }
        op.add("pulls", "true");
    } else {
        op.add("pulls", "false");
    }
    // init makes the links anew: without a copy where the relays pull. With
    // --json its document is a member of reseed's, which alone goes to out.
    Options link_options = options;
    link_options.copy_new_links = !pulls;
    std::ostringstream init_document;
    const int made = init(mesh, link_options, options.json ? init_document : out, err);
    if (options.json) op.add("init", document_of(init_document));
    if (made != kOk) return op.error("init did not complete the links (exit " + std::to_string(made) + ")", {}, made);
    // The copies done (every table of every link ready) and the pulls (no
    // request left), then rejoin waits for the streams to catch up and
    // lifts the fence.
    const int copied = op.run([&]() -> int {
        const std::string links = text_array(link_names(mesh.names()));
        const auto deadline = Clock::now() + std::chrono::duration<double>(options.wait_s.value_or(120));
        for (auto* r : everyone) {
            while (r->db->value("SELECT count(*) FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid"
                                " WHERE s.subname = ANY ($1::text[]) AND sr.srsubstate <> 'r'",
                                {links}) != "0" ||
                   (pulls && r->db->value("SELECT count(*) FROM causal.pull_requests") != "0")) {
                // Not a refusal: the links are made anew already.
                if (Clock::now() >= deadline)
                    return op.error("the copies or pulls into " + r->region->name + " have not finished within " +
                                        seconds_text(options.wait_s.value_or(120)) +
                                        " (see causalctl status); run causalctl rejoin " + target + " once they have",
                                    {}, kAttention);
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
        return kOk;
    });
    if (copied != kOk) return copied;
    std::ostringstream rejoin_document;
    int joined = rejoin(mesh, options, options.json ? rejoin_document : out, err);
    // A rejoin that refused changed nothing; the reseed did: its links are new.
    if (joined == kRefused) {
        joined = kAttention;
        if (!options.json)
            err << "causalctl reseed: the links of " << target << " are made anew; its fence stays until causalctl rejoin "
                << target << " succeeds\n";
    }
    if (!options.json) return joined;
    op.add("rejoin", document_of(rejoin_document));
    return op.done(joined, joined == kOk, {});
}

}  // namespace causalctl
