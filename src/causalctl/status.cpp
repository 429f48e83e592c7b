// causalctl status: each region's epoch, state and clock, and each link's
// health: subscription and slot, lag in bytes and milliseconds, the last
// message from the publisher, the WAL its slot holds, the apply worker's
// error counts and last error (causal.link_errors()) with what to do about
// it. A slot that holds too much WAL is a warning: a dead region's slots fill
// the survivors' disks; so is a lost slot, and a slot or subscription of
// pg_causal's that belongs to no region given (a region gone for good).

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>

#include "commands.hpp"
#include "json.hpp"
#include "pg.hpp"

namespace causalctl {

namespace {

// Clocks more than this apart are reported (the design's alarm threshold,
// well inside causal.max_clock_offset).
constexpr double kClockAlarmMs = 100;
// A link still connecting after this long, hearing nothing, is down
// (wal_receiver_timeout's default is a minute; a start takes seconds).
constexpr double kStartingMs = 30000;

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

struct LinkError {
    std::string at, sqlstate, message;
    bool table_sync;
};

struct Subscription {
    bool enabled;
    bool running;
    long long tables_copying;  // initial copies not finished: their changes wait
    std::optional<std::string> last_message;
    std::optional<double> last_message_age_ms;
    long long apply_errors = 0, sync_errors = 0;  // pg_stat_subscription_stats
    std::optional<LinkError> last_error;          // causal.link_errors(), for those who may read it
    std::optional<LinkError> relay_error;         // the relay's, pulling what the link's source wrote
};

// What an operator does about a link's error, for the errors a mesh meets.
std::string advice(const LinkError& error, const std::string& from, const std::string& to) {
    const std::string& m = error.message;
    if (m.find("missing replicated column") != std::string::npos)
        return "a column " + from + "'s table has is missing in " + to +
               "'s: make the same change there (causalctl ddl makes a change in every region, in an order that "
               "keeps the links flowing)";
    if (m.find("that this region's lacks") != std::string::npos)
        return "the table differs between the regions the relay reads it in: make the same change in " + to +
               " (causalctl ddl makes a change in every region)";
    if (m.find("does not exist") != std::string::npos && m.find("relation") != std::string::npos)
        return "a table " + from + " publishes is missing in " + to + ": create it there, causal.enable() it, "
               "and run causalctl init";
    if (m.find("could not connect") != std::string::npos || m.find("could not receive") != std::string::npos ||
        m.find("connection") != std::string::npos)
        return to + " cannot reach " + from + " (is it up? is the link's DSN right?)";
    if (m.find("requested WAL segment") != std::string::npos || m.find("can no longer get changes") != std::string::npos)
        return "the slot lost WAL " + to + " still needed: rebuild " + to + " with causalctl reseed";
    return "see " + to + "'s server log";
}

struct LinkStatus {
    std::string from, to;
    std::string state;  // streaming, copying (initial copy), starting, down, lost, missing, unknown
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

// What keeps a region's tenants apart, as the catalog says it: message
// tables outside their shape, and the replication role and its links as
// pg_causal makes them (a region before 0.4.0 has no such role).
std::vector<std::string> tenant_boundary(Connection& db, const std::string& region) {
    std::vector<std::string> warnings;
    Result tables = db.exec("SELECT relid::text, problem FROM causal.message_tables() WHERE problem IS NOT NULL");
    for (int i = 0; i < tables.rows(); ++i)
        warnings.push_back(region + ": message table " + tables.text(i, 0) + " is outside the shape of a message table: " +
                           tables.text(i, 1) + " (its rows are stored as its owner, and its owner's changes to it are "
                           "refused, until a superuser changes it back and runs causal.enable() on it)");
    if (db.value("SELECT to_regprocedure('causal.replication_role_problem()') IS NOT NULL") != "t") return warnings;
    const std::string role = db.value("SELECT coalesce(causal.replication_role_problem(), '')");
    if (!role.empty()) warnings.push_back(region + ": " + role + " (causalctl init mends it)");
    Result links = db.exec("SELECT s.subname, s.subowner::regrole::text FROM pg_subscription s"
                           " WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                           "   AND s.subpublications && '{causal_mesh,causal_messages,causal_copy}'::text[]"
                           "   AND s.subowner IS DISTINCT FROM to_regrole('causal_replicator') ORDER BY 1");
    for (int i = 0; i < links.rows(); ++i)
        warnings.push_back(region + ": subscription " + links.text(i, 0) + " belongs to " + links.text(i, 1) +
                           ", not causal_replicator: its workers run with that role's rights (causalctl init gives it "
                           "to causal_replicator)");
    return warnings;
}

}  // namespace

int status(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err) {
    std::vector<RegionStatus> regions;
    std::map<std::string, std::map<std::string, Slot>> slots;                  // region -> slot name
    std::map<std::string, std::map<std::string, Subscription>> subscriptions;  // region -> name
    std::vector<std::string> warnings;
    bool unreachable = false;

    for (const Region& region : mesh.regions()) {
        RegionStatus r;
        r.name = region.name;
        try {
            Connection db(region.name, region.dsn, options.session);
            Result own = db.exec("SELECT epoch, state, node_id FROM causal.regions WHERE region = $1", {region.name});
            if (own.rows() > 0) {
                r.epoch = own.integer(0, 0);
                r.state = own.text(0, 1);
                r.node_id = maybe_integer(own, 0, 2);
            }
            // pg_causal's slots and subscriptions here, by name: the links
            // between the regions given and those this region has
            // registered (a region left out of the configuration, whose
            // links are reported below as belonging to no link given), and
            // every subscription to the mesh's publications, whatever its name.
            std::vector<std::string> known = mesh.names();
            Result registered = db.exec("SELECT region FROM causal.regions ORDER BY region");
            for (int i = 0; i < registered.rows(); ++i)
                if (!mesh.find(registered.text(i, 0))) known.push_back(registered.text(i, 0));
            const std::string links = text_array(link_names(known));
            const double sent = now_ms();
            const double remote = db.exec("SELECT extract(epoch FROM clock_timestamp()) * 1000").number(0, 0);
            r.clock_offset_ms = remote - (sent + now_ms()) / 2;

            Result s = db.exec(
                "SELECT s.slot_name, s.active, pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,"
                "       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.wal_status,"
                "       (SELECT extract(epoch FROM w.replay_lag) * 1000 FROM pg_stat_replication w"
                "         WHERE w.pid = s.active_pid)"
                "  FROM pg_replication_slots s WHERE s.slot_name = ANY ($1::text[])",
                {links});
            for (int i = 0; i < s.rows(); ++i)
                slots[region.name][s.text(i, 0)] =
                    Slot{s.boolean(i, 1), maybe_integer(s, i, 2), maybe_integer(s, i, 3), s.maybe(i, 4),
                         maybe_number(s, i, 5)};
            // The last errors' text, where this role may read it.
            const bool errors_readable =
                db.value("SELECT coalesce(has_function_privilege(to_regprocedure('causal.link_errors()'), 'EXECUTE'),"
                         " false)::text") == "true";
            Result u = db.exec(
                "SELECT s.subname, s.subenabled, w.pid IS NOT NULL, w.last_msg_receipt_time::text,"
                "       extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time) * 1000,"
                "       (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r'),"
                "       coalesce(st.apply_error_count, 0), coalesce(st.sync_error_count, 0),"
                "       e.failed_at::text, e.sqlstate, e.message, e.table_sync,"
                // A region before by_relay has none: NULL.
                "       coalesce((to_jsonb(e) ->> 'by_relay')::boolean, false)"
                "  FROM pg_subscription s"
                "  LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL"
                "  LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid"
                "  LEFT JOIN " + std::string(errors_readable ? "causal.link_errors()"
                                                             : "(SELECT NULL::oid, NULL::timestamptz, NULL::bool,"
                                                               " NULL::text, NULL::text WHERE false)") +
                "       e (subscription, failed_at, table_sync, sqlstate, message) ON e.subscription = s.oid"
                " WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                "   AND (s.subname = ANY ($1::text[]) OR s.subpublications && string_to_array($2, ', '))",
                {links, kMeshPublications});
            // A row per error of the link (its workers', the relay's), or one without.
            for (int i = 0; i < u.rows(); ++i) {
                auto& known = subscriptions[region.name];
                auto found = known.find(u.text(i, 0));
                Subscription& sub = found != known.end()
                                        ? found->second
                                        : known[u.text(i, 0)] = Subscription{
                                              u.boolean(i, 1), u.boolean(i, 2), u.integer(i, 5), u.maybe(i, 3),
                                              maybe_number(u, i, 4), u.integer(i, 6), u.integer(i, 7), std::nullopt,
                                              std::nullopt};
                if (u.is_null(i, 8)) continue;
                const LinkError error{u.text(i, 8), u.text(i, 9), u.text(i, 10), u.boolean(i, 11)};
                (u.boolean(i, 12) ? sub.relay_error : sub.last_error) = error;
            }
            for (auto& w : tenant_boundary(db, region.name)) warnings.push_back(std::move(w));
        } catch (const DbError& error) {
            r.error = error.what();
            unreachable = true;
            warnings.push_back(std::string(error.what()));
            if (!options.json) err << "causalctl status: " << error.what() << '\n';
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
            const Subscription* sub = link.subscription ? &*link.subscription : nullptr;
            const bool lost = link.slot && link.slot->wal_status && *link.slot->wal_status == "lost";
            if (!to.error && !sub) {
                link.state = "missing";
                warnings.push_back(label + ": no subscription (run causalctl init)");
            } else if (lost) {
                link.state = "lost";
                warnings.push_back(label + ": slot " + name + " in " + from.name +
                                   " is lost (max_slot_wal_keep_size reached): " + to.name +
                                   " can no longer get what it missed; rebuild it with causalctl reseed " + to.name);
            } else if (sub && !sub->enabled) {
                link.state = "down";
                warnings.push_back(label + ": subscription disabled");
            } else if (sub && (!sub->running || (link.slot && !link.slot->active))) {
                // Not streaming: its worker is starting or connecting, or it
                // stopped on an error and PostgreSQL relaunches it (every
                // wal_retrieve_retry_interval), so it may be running again
                // for a moment. Starting, only without errors and not for long.
                const long long errors = sub->apply_errors + sub->sync_errors;
                link.state = "down";
                if (sub->last_error && (errors > 0 || !sub->running))
                    warnings.push_back(label + ": the " + (sub->last_error->table_sync ? "table sync" : "apply") +
                                       " worker stopped on an error at " + sub->last_error->at + " (" +
                                       sub->last_error->sqlstate + "): " + sub->last_error->message + "; " +
                                       advice(*sub->last_error, from.name, to.name));
                else if (errors > 0 || (sub->last_message_age_ms && *sub->last_message_age_ms > kStartingMs))
                    warnings.push_back(label + ": not streaming (" + std::to_string(errors) + " errors" +
                                       (sub->last_message_age_ms ? ", last message " +
                                                                       ms_text(*sub->last_message_age_ms / 1000) + " s ago"
                                                                 : "") +
                                       "; see " + to.name + "'s server log, or run status as causal_admin for the "
                                       "last error)");
                else
                    link.state = "starting";
            } else if (sub && link.slot) {
                link.state = sub->tables_copying > 0 ? "copying" : "streaming";
                if (sub->tables_copying > 0 && sub->sync_errors > 0)
                    warnings.push_back(label + ": the first copy of " + std::to_string(sub->tables_copying) +
                                       " table(s) failed " + std::to_string(sub->sync_errors) + " times" +
                                       (sub->last_error ? ": " + sub->last_error->message + "; " +
                                                              advice(*sub->last_error, from.name, to.name)
                                                        : std::string()));
            }
            // Whatever the stream's state: the relay brings what a cut link
            // does not, and this says why it does not.
            if (sub && sub->relay_error)
                warnings.push_back(label + ": the relay could not pull " + from.name + "'s messages at " +
                                   sub->relay_error->at + " (" + sub->relay_error->sqlstate + "): " +
                                   sub->relay_error->message + "; " + advice(*sub->relay_error, from.name, to.name));
            if (link.slot) {
                const Slot& slot = *link.slot;
                if (slot.held_bytes && *slot.held_bytes > options.max_slot_wal_mb * 1024 * 1024)
                    warnings.push_back(label + ": slot " + name + " holds " + bytes_text(slot.held_bytes) +
                                       " of WAL in " + from.name +
                                       " (above --max-slot-wal-mb); a region that stays away fills this disk: "
                                       "fail it over, or causalctl remove it once it is gone for good");
                if (slot.wal_status && *slot.wal_status == "unreserved")
                    warnings.push_back(label + ": slot " + name + " WAL status is unreserved "
                                       "(max_slot_wal_keep_size reached: it will be lost unless " + to.name +
                                       " catches up soon)");
            } else if (!from.error) {
                warnings.push_back(label + ": no slot " + name + " in " + from.name);
            }
            links.push_back(link);
        }
    }

    // pg_causal's slots and subscriptions that are no link between the
    // regions given: a removed region's, or one left out of the
    // configuration. A slot holds WAL for good.
    const std::vector<std::string> given = link_names(mesh.names());
    const std::set<std::string> configured(given.begin(), given.end());
    for (const auto& [region, by_name] : slots)
        for (const auto& [name, slot] : by_name)
            if (!configured.count(name))
                warnings.push_back(region + ": slot " + name + " belongs to no link between the regions given (" +
                                   bytes_text(slot.held_bytes) + " of WAL held; " +
                                   (slot.active ? "in use" : "not in use") +
                                   "): causalctl remove the region it is for, or add that region to the configuration");
    for (const auto& [region, by_name] : subscriptions)
        for (const auto& [name, sub] : by_name)
            if (!configured.count(name))
                warnings.push_back(region + ": subscription " + name +
                                   " belongs to no link between the regions given: causalctl remove the region it "
                                   "is for, or add that region to the configuration");

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
                .add("last_message_age_ms", sub ? json::maybe(sub->last_message_age_ms, [](double v) { return json::number(v); }) : json::null())
                .add("apply_errors", sub ? json::number(sub->apply_errors) : json::null())
                .add("sync_errors", sub ? json::number(sub->sync_errors) : json::null())
                .add("last_error", sub && sub->last_error
                                       ? json::Object().add("at", json::string(sub->last_error->at))
                                             .add("sqlstate", json::string(sub->last_error->sqlstate))
                                             .add("message", json::string(sub->last_error->message))
                                             .add("advice", json::string(advice(*sub->last_error, l.from, l.to))).str()
                                       : json::null())
                .add("relay_error", sub && sub->relay_error
                                        ? json::Object().add("at", json::string(sub->relay_error->at))
                                              .add("sqlstate", json::string(sub->relay_error->sqlstate))
                                              .add("message", json::string(sub->relay_error->message))
                                              .add("advice", json::string(advice(*sub->relay_error, l.from, l.to))).str()
                                        : json::null());
            link_json.push_back(o.str());
        }
        for (const auto& w : warnings) warning_json.push_back(json::string(w));
        out << json::Object().add("ok", json::boolean(!unreachable && warnings.empty()))
                   .add("regions", json::array(region_json)).add("links", json::array(link_json))
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
        std::snprintf(line, sizeof line, "  %-28s %-10s %10s %8s %10s %13s %7s\n", "link", "state", "lag", "lag ms",
                      "WAL held", "last message", "errors");
        out << line;
        for (const auto& l : links) {
            std::string age = l.subscription && l.subscription->last_message_age_ms
                                  ? ms_text(*l.subscription->last_message_age_ms / 1000) + " s ago"
                                  : "-";
            std::string errors = l.subscription ? std::to_string(l.subscription->apply_errors + l.subscription->sync_errors)
                                                : "-";
            std::snprintf(line, sizeof line, "  %-28s %-10s %10s %8s %10s %13s %7s\n", (l.from + " -> " + l.to).c_str(),
                          l.state.c_str(), bytes_text(l.slot ? l.slot->lag_bytes : std::nullopt).c_str(),
                          ms_text(l.slot ? l.slot->lag_ms : std::nullopt).c_str(),
                          bytes_text(l.slot ? l.slot->held_bytes : std::nullopt).c_str(), age.c_str(), errors.c_str());
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
