#include "regions.hpp"

#include <chrono>
#include <cstdio>
#include <thread>

#include "json.hpp"

namespace causalctl {

std::string seconds_text(double s) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.3g s", s);
    return buffer;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

std::optional<int> Operation::begin(Reach need, const std::string& purpose, bool target_configured) {
    const std::string& name = target_name();
    if (target_configured && !mesh_.find(name)) return usage("\"" + name + "\" is not one of the regions given");
    for (const Region& region : mesh_.regions()) {
        try {
            reached_.push_back(
                {&region, std::make_unique<Connection>(region.name, region.dsn, options().session)});
        } catch (const DbError&) {
            down.push_back(region.name);
            if (region.name != name) others_down.push_back(region.name);
        }
    }
    for (auto& r : reached_) {
        everyone.push_back(&r);
        if (r.region->name == name) target = &r;
        else others.push_back(&r);
    }
    const std::string to = purpose.empty() ? "" : " to " + purpose;
    switch (need) {
        case Reach::any:
            break;
        case Reach::target_and_majority:
            if (target == nullptr) return refuse(name + " cannot be reached");
            if (everyone.size() < majority(mesh_.regions().size()))
                return refuse("a majority must be reachable" + to + "; unreachable: " + join(down));
            break;
        case Reach::all_others:
            if (!others_down.empty())
                return refuse("every other region must be reachable" + to + "; unreachable: " + join(others_down));
            break;
        case Reach::all:
            if (!down.empty()) return refuse("every region must be reachable" + to + "; unreachable: " + join(down));
            break;
    }
    return std::nullopt;
}

namespace {

// The target's row and fences as `db` holds them, for causal.carry_fence.
struct Fence {
    long long epoch = -1;
    bool fenced = false;
    std::string region_row, fence_rows;  // json
};

Fence fence_in(Connection& db, const std::string& target) {
    Result r = db.exec("SELECT r.epoch, r.state = 'fenced', row_to_json(r)::text,"
                       "       (SELECT coalesce(json_agg(f), '[]')::text FROM causal.fences f WHERE f.region = r.region)"
                       "  FROM causal.regions r WHERE r.region = $1",
                       {target});
    Fence fence;
    if (r.rows() == 0) return fence;
    fence.epoch = r.integer(0, 0);
    fence.fenced = r.boolean(0, 1);
    fence.region_row = r.text(0, 2);
    fence.fence_rows = r.text(0, 3);
    return fence;
}

}  // namespace

long long carry_newest_fence(std::vector<Reached*>& regions, const std::string& target,
                             std::vector<std::string>& carried_to, std::vector<std::string>* not_carried) {
    Fence newest;
    std::vector<std::pair<Reached*, Fence>> held;
    for (auto* r : regions) {
        Fence f = fence_in(*r->db, target);
        if (f.epoch > newest.epoch || (f.epoch == newest.epoch && f.fenced && !newest.fenced)) newest = f;
        held.emplace_back(r, std::move(f));
    }
    if (!newest.fenced) return -1;
    for (auto& [r, f] : held) {
        if (f.epoch > newest.epoch || (f.epoch == newest.epoch && f.fenced)) continue;
        try {
            r->db->exec("SELECT causal.carry_fence($1::jsonb, $2::jsonb)", {newest.region_row, newest.fence_rows});
            carried_to.push_back(r->region->name);
        } catch (const DbError& error) {
            // The fence stands where it is; replication carries it on.
            if (not_carried == nullptr) throw;
            not_carried->push_back(std::string(error.what()));
        }
    }
    return newest.epoch;
}

std::optional<std::string> misnamed(const std::vector<Reached*>& regions) {
    std::vector<std::string> wrong;
    for (const auto* r : regions) {
        const std::string name = r->db->value("SELECT current_setting('causal.region', true)");
        if (name != r->region->name)
            wrong.push_back(r->region->name + "'s DSN reaches a server whose causal.region is '" + name + "'");
    }
    if (wrong.empty()) return std::nullopt;
    return join(wrong) + " (each region's DSN must reach that region: a vote counted twice is no majority)";
}

// Fencing and lifting a fence are causal_admin's (superusers are members of
// every role): said up front and by name, rather than as the permission error
// of whichever statement comes first, with some votes already cast.
std::optional<std::string> lacks_causal_admin(const std::vector<Reached*>& regions) {
    std::vector<std::string> lacking;
    for (const auto* r : regions)
        if (r->db->value("SELECT pg_has_role('causal_admin', 'MEMBER')::text") != "true") lacking.push_back(r->region->name);
    if (lacking.empty()) return std::nullopt;
    return "the role causalctl connects as is not a member of causal_admin in " + join(lacking) +
           " (GRANT causal_admin TO it there: roles are not replicated)";
}

std::optional<std::string> lacks_superuser(const std::vector<Reached*>& regions, const std::string& command) {
    std::vector<std::string> lacking;
    for (const auto* r : regions)
        if (r->db->value("SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user") != "true")
            lacking.push_back(r->region->name);
    if (lacking.empty()) return std::nullopt;
    return "causalctl " + command + " changes subscriptions and slots, which needs a superuser; it connects as one "
           "that is not in " + join(lacking);
}

std::optional<std::string> slots_behind(Connection& db, const std::vector<std::string>& slots,
                                        Clock::time_point deadline) {
    const std::string written = db.value("SELECT pg_current_wal_insert_lsn()::text");
    for (const auto& slot : slots) {
        while (db.value("SELECT coalesce(bool_or(confirmed_flush_lsn >= $2::pg_lsn), false) FROM pg_replication_slots"
                        " WHERE slot_name = $1", {slot, written}) != "t") {
            if (Clock::now() >= deadline) return slot;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    return std::nullopt;
}

void drop_subscription(Connection& db, const std::string& name) {
    if (db.value("SELECT count(*) FROM pg_subscription WHERE subname = $1", {name}) == "0") return;
    // Without its slot, DROP SUBSCRIPTION does not connect to the publisher,
    // which may be gone: the slot there is dropped on its own, where it can be.
    db.exec("ALTER SUBSCRIPTION " + name + " DISABLE");
    db.exec("ALTER SUBSCRIPTION " + name + " SET (slot_name = NONE)");
    db.exec("DROP SUBSCRIPTION " + name);
}

void drop_slot(Connection& db, const std::string& name) {
    for (int i = 0; i < 100; ++i) {
        Result slot = db.exec("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", {name});
        if (slot.rows() == 0) return;
        if (slot.is_null(0, 0)) {
            db.exec("SELECT pg_drop_replication_slot($1)", {name});
            return;
        }
        db.exec("SELECT pg_terminate_backend($1::int)", {slot.text(0, 0)});
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw DbError(db.region(), "slot " + name + " stays in use");
}

}  // namespace causalctl
