// What the commands that change a region's place in the mesh share
// (failover, rejoin, remove, reseed): connections to the regions that can
// be reached, how they report, and the fence as each region holds it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pg.hpp"

namespace causalctl {

using Clock = std::chrono::steady_clock;

std::string seconds_text(double s);
double seconds_since(Clock::time_point start);
std::string join(const std::vector<std::string>& items);

struct Reached {
    const Region* region;
    std::unique_ptr<Connection> db;
};

// Connects to every region it can; the others are listed in `down`.
std::vector<Reached> reach(const Mesh& mesh, const Options& options, std::vector<std::string>& down);

// A refusal (exit 4, nothing changed) and a failed statement (exit 3), as
// text on `err` or as the JSON document on `out`.
int refuse(const Options& options, std::ostream& out, std::ostream& err, const std::string& command,
           const std::string& why);
int failed(const Options& options, std::ostream& out, std::ostream& err, const std::string& command,
           const DbError& error);

// Carries the newest fence of `target` that any of `regions` holds to those
// that lack it (causal.carry_fence), naming them in `carried_to`; where that
// fails, says why in `not_carried` (or throws, without it). The fence's
// epoch, or -1 when no region has the target fenced in its newest epoch.
long long carry_newest_fence(std::vector<Reached*>& regions, const std::string& target,
                             std::vector<std::string>& carried_to, std::vector<std::string>* not_carried = nullptr);

// Which regions' DSNs reach a server of another name (or none), or nothing:
// one server under two names would vote twice.
std::optional<std::string> misnamed(const std::vector<Reached*>& regions);

// Why the role causalctl connects as may not fence or lift a fence in some
// of `regions` (it is not in causal_admin there), or nothing.
std::optional<std::string> lacks_causal_admin(const std::vector<Reached*>& regions);

// Why it may not change subscriptions and slots (it is no superuser), or nothing.
std::optional<std::string> lacks_superuser(const std::vector<Reached*>& regions, const std::string& command);

// Waits until each of `slots` in `db` has confirmed everything `db` had
// written when asked (the subscriber has it all), or the deadline passes;
// then returns the first slot still behind, or nothing.
std::optional<std::string> slots_behind(Connection& db, const std::vector<std::string>& slots,
                                        Clock::time_point deadline);

// A link's two ends, gone whether or not the other end can be reached: the
// subscription without touching its remote slot, and the slot, its
// walsender stopped first.
void drop_subscription(Connection& db, const std::string& name);
void drop_slot(Connection& db, const std::string& name);

}  // namespace causalctl
