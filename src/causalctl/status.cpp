// causalctl status: each region's epoch, state and clock, and each link's
// health: subscription and slot, lag in bytes and milliseconds, the last
// message from the publisher, and the WAL its slot holds. A slot that holds
// too much WAL is a warning: a dead region's slots fill the survivors' disks.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <ostream>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"

namespace causalctl {

namespace {

// Clocks more than this apart are reported (the design's alarm threshold,
// well inside causal.max_clock_offset).
constexpr double kClockAlarmMs = 100;

struct RegionStatus {
    std::string name;
    std::optional<std::string> error;  // unreachable
    std::optional<long long> epoch;
    std::string state = "unregistered";
    std::optional<long long> node_id;
    double clock_offset_ms = 0;  // against causalctl's clock, by round-trip midpoint
};

struct Slot {
    bool active;
    std::optional<long long> lag_bytes, held_bytes;
    std::optional<std::string> wal_status;
    std::optional<double> lag_ms;
};

struct Subscription {
    bool enabled;
    bool running;
    long long tables_copying;  // initial copies not finished: their changes wait
    std::optional<std::string> last_message;
    std::optional<double> last_message_age_ms;
};

struct LinkStatus {
    std::string from, to;
    std::string state;  // streaming, copying (initial copy), down, missing, unknown
    std::optional<Slot> slot;
    std::optional<Subscription> subscription;
};

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(system_clock::now().time_since_epoch()).count();
}

std::optional<long long> maybe_integer(const Result& r, int row, int column) {
    if (r.is_null(row, column)) return std::nullopt;
    return r.integer(row, column);
}
std::optional<double> maybe_number(const Result& r, int row, int column) {
    if (r.is_null(row, column)) return std::nullopt;
    return r.number(row, column);
}

std::string bytes_text(std::optional<long long> bytes) {
    if (!bytes) return "-";
    char buffer[32];
    if (*bytes < 10 * 1024) std::snprintf(buffer, sizeof buffer, "%lld B", *bytes);
    else if (*bytes < 10 * 1024 * 1024) std::snprintf(buffer, sizeof buffer, "%lld kB", *bytes / 1024);
    else std::snprintf(buffer, sizeof buffer, "%lld MB", *bytes / (1024 * 1024));
    return buffer;
}

std::string ms_text(std::optional<double> ms) {
    if (!ms) return "-";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", *ms);
    return buffer;
}

}  // namespace

int status(const Mesh& mesh, const Options& options, std::ostream& out) {
    std::vector<RegionStatus> regions;
    std::map<std::string, std::map<std::string, Slot>> slots;                  // region -> slot name
    std::map<std::string, std::map<std::string, Subscription>> subscriptions;  // region -> name
    std::vector<std::string> warnings;
    bool unreachable = false;

    for (const Region& region : mesh.regions()) {
        RegionStatus r;
        r.name = region.name;
        try {
            Connection db(region.name, region.dsn, options.connect_timeout_s);
            Result own = db.exec("SELECT epoch, state, node_id FROM causal.regions WHERE region = $1", {region.name});
            if (own.rows() > 0) {
                r.epoch = own.integer(0, 0);
                r.state = own.text(0, 1);
                r.node_id = maybe_integer(own, 0, 2);
            }
            const double sent = now_ms();
            const double remote = std::stod(db.value("SELECT extract(epoch FROM clock_timestamp()) * 1000"));
            r.clock_offset_ms = remote - (sent + now_ms()) / 2;

            Result s = db.exec(
                "SELECT s.slot_name, s.active, pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,"
                "       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.wal_status,"
                "       (SELECT extract(epoch FROM w.replay_lag) * 1000 FROM pg_stat_replication w"
                "         WHERE w.pid = s.active_pid)"
                "  FROM pg_replication_slots s WHERE s.slot_name LIKE 'causal\\_%'");
            for (int i = 0; i < s.rows(); ++i)
                slots[region.name][s.text(i, 0)] =
                    Slot{s.boolean(i, 1), maybe_integer(s, i, 2), maybe_integer(s, i, 3), s.maybe(i, 4),
                         maybe_number(s, i, 5)};
            Result u = db.exec(
                "SELECT s.subname, s.subenabled, w.pid IS NOT NULL, w.last_msg_receipt_time::text,"
                "       extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time) * 1000,"
                "       (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r')"
                "  FROM pg_subscription s"
                "  LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL"
                " WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                "   AND s.subname LIKE 'causal\\_%'");
            for (int i = 0; i < u.rows(); ++i)
                subscriptions[region.name][u.text(i, 0)] =
                    Subscription{u.boolean(i, 1), u.boolean(i, 2), u.integer(i, 5), u.maybe(i, 3), maybe_number(u, i, 4)};
        } catch (const DbError& error) {
            r.error = error.what();
            unreachable = true;
            warnings.push_back(std::string(error.what()));
        }
        regions.push_back(r);
    }

    // Offsets between regions, not against causalctl's own clock.
    double reference = 0;
    std::string reference_name;
    for (const auto& r : regions)
        if (!r.error) {
            reference = r.clock_offset_ms;
            reference_name = r.name;
            break;
        }
    for (auto& r : regions) {
        if (r.error) continue;
        r.clock_offset_ms -= reference;
        if (std::fabs(r.clock_offset_ms) > kClockAlarmMs)
            warnings.push_back(r.name + ": clock " + ms_text(r.clock_offset_ms) + " ms off " + reference_name +
                               "'s (alarm above 100 ms)");
    }

    std::vector<LinkStatus> links;
    for (const RegionStatus& from : regions) {
        for (const RegionStatus& to : regions) {
            if (from.name == to.name) continue;
            LinkStatus link{from.name, to.name, "unknown", std::nullopt, std::nullopt};
            const std::string name = link_name(from.name, to.name);
            if (!from.error) {
                auto found = slots[from.name].find(name);
                if (found != slots[from.name].end()) link.slot = found->second;
            }
            if (!to.error) {
                auto found = subscriptions[to.name].find(name);
                if (found != subscriptions[to.name].end()) link.subscription = found->second;
            }
            const std::string label = from.name + " -> " + to.name;
            if (!to.error && !link.subscription) {
                link.state = "missing";
                warnings.push_back(label + ": no subscription (run causalctl init)");
            } else if (link.subscription && (!link.subscription->enabled || !link.subscription->running)) {
                link.state = "down";
                warnings.push_back(label + (link.subscription->enabled ? ": apply worker not running"
                                                                        : ": subscription disabled"));
            } else if (link.slot && !link.slot->active) {
                link.state = "down";
                warnings.push_back(label + ": slot " + name + " is not in use");
            } else if (link.subscription && link.slot) {
                link.state = link.subscription->tables_copying > 0 ? "copying" : "streaming";
            }
            if (link.slot) {
                const Slot& slot = *link.slot;
                if (slot.held_bytes && *slot.held_bytes > options.max_slot_wal_mb * 1024 * 1024)
                    warnings.push_back(label + ": slot " + name + " holds " + bytes_text(slot.held_bytes) +
                                       " of WAL in " + from.name +
                                       " (above --max-slot-wal-mb); a region that stays away fills this disk: "
                                       "fail it over, or drop the slot once it is gone for good");
                if (slot.wal_status && (*slot.wal_status == "unreserved" || *slot.wal_status == "lost"))
                    warnings.push_back(label + ": slot " + name + " WAL status is " + *slot.wal_status +
                                       " (max_slot_wal_keep_size reached)");
            } else if (!from.error) {
                warnings.push_back(label + ": no slot " + name + " in " + from.name);
            }
            links.push_back(link);
        }
    }

    if (options.json) {
        std::vector<std::string> region_json, link_json, warning_json;
        for (const auto& r : regions) {
            json::Object o;
            o.add("region", json::string(r.name)).add("reachable", json::boolean(!r.error));
            if (r.error) o.add("error", json::string(*r.error));
            o.add("node_id", json::maybe(r.node_id, [](long long v) { return json::number(v); }))
                .add("epoch", json::maybe(r.epoch, [](long long v) { return json::number(v); }))
                .add("state", r.error ? json::null() : json::string(r.state))
                .add("clock_offset_ms", r.error ? json::null() : json::number(r.clock_offset_ms));
            region_json.push_back(o.str());
        }
        for (const auto& l : links) {
            json::Object o;
            o.add("from", json::string(l.from)).add("to", json::string(l.to)).add("state", json::string(l.state));
            const Slot* slot = l.slot ? &*l.slot : nullptr;
            const Subscription* sub = l.subscription ? &*l.subscription : nullptr;
            o.add("lag_bytes", slot ? json::maybe(slot->lag_bytes, [](long long v) { return json::number(v); }) : json::null())
                .add("lag_ms", slot ? json::maybe(slot->lag_ms, [](double v) { return json::number(v); }) : json::null())
                .add("wal_held_bytes", slot ? json::maybe(slot->held_bytes, [](long long v) { return json::number(v); }) : json::null())
                .add("wal_status", slot ? json::maybe(slot->wal_status, json::string) : json::null())
                .add("last_message", sub ? json::maybe(sub->last_message, json::string) : json::null())
                .add("last_message_age_ms", sub ? json::maybe(sub->last_message_age_ms, [](double v) { return json::number(v); }) : json::null());
            link_json.push_back(o.str());
        }
        for (const auto& w : warnings) warning_json.push_back(json::string(w));
        out << json::Object().add("regions", json::array(region_json)).add("links", json::array(link_json))
                   .add("warnings", json::array(warning_json)).str() << '\n';
    } else {
        char line[256];
        out << "regions\n";
        std::snprintf(line, sizeof line, "  %-14s %5s %6s %-12s %14s\n", "region", "node", "epoch", "state", "clock offset");
        out << line;
        for (const auto& r : regions) {
            if (r.error) {
                std::snprintf(line, sizeof line, "  %-14s unreachable\n", r.name.c_str());
            } else {
                std::snprintf(line, sizeof line, "  %-14s %5s %6s %-12s %+11.1f ms\n", r.name.c_str(),
                              r.node_id ? std::to_string(*r.node_id).c_str() : "-",
                              r.epoch ? std::to_string(*r.epoch).c_str() : "-", r.state.c_str(), r.clock_offset_ms);
            }
            out << line;
        }
        out << "links (publisher -> subscriber)\n";
        std::snprintf(line, sizeof line, "  %-28s %-10s %10s %8s %10s %13s\n", "link", "state", "lag", "lag ms",
                      "WAL held", "last message");
        out << line;
        for (const auto& l : links) {
            std::string age = l.subscription && l.subscription->last_message_age_ms
                                  ? ms_text(*l.subscription->last_message_age_ms / 1000) + " s ago"
                                  : "-";
            std::snprintf(line, sizeof line, "  %-28s %-10s %10s %8s %10s %13s\n", (l.from + " -> " + l.to).c_str(),
                          l.state.c_str(), bytes_text(l.slot ? l.slot->lag_bytes : std::nullopt).c_str(),
                          ms_text(l.slot ? l.slot->lag_ms : std::nullopt).c_str(),
                          bytes_text(l.slot ? l.slot->held_bytes : std::nullopt).c_str(), age.c_str());
            out << line;
        }
        if (!warnings.empty()) {
            out << "warnings\n";
            for (const auto& w : warnings) out << "  " << w << '\n';
        }
    }
    if (unreachable) return kUnreachable;
    return warnings.empty() ? kOk : kAttention;
}

}  // namespace causalctl
