// What the commands that change a region's place in the mesh share
// (failover, rejoin, remove, reseed): their prologue (reach the regions,
// split the target from the others, refuse when too few were reached), how
// they report (report.hpp), and the fence as each region holds it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pg.hpp"
#include "report.hpp"

namespace causalctl {

using Clock = std::chrono::steady_clock;

std::string seconds_text(double s);
double seconds_since(Clock::time_point start);
std::string join(const std::vector<std::string>& items);

struct Reached {
    const Region* region;
    std::unique_ptr<Connection> db;
};

// A command on one region of the mesh, options.target: the regions it
// reached, split into that region and the others, and its Report.
class Operation : public Report {
public:
    // Which regions must be reached before anything is asked of any.
    enum class Reach {
        any,                  // whatever can be (failover: the votes decide)
        target_and_majority,  // the target, and with it a majority (rejoin)
        all_others,           // every region but the target (remove)
        all,                  // every region (reseed)
    };

    Operation(std::string command, const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err)
        : Report(std::move(command), options, out, err), mesh_(mesh) {}

    // The prologue. The target must be one of the regions given (exit 2;
    // unless `target_configured` is false: remove takes a region left out
    // of the configuration). Every region is reached that can be, and the
    // command refused (exit 4) unless `need` is met; the refusal says
    // which regions were not reached, and what for (`purpose`, e.g. "lift
    // a fence"). Nothing when the command may go on, else its exit code.
    std::optional<int> begin(Reach need, const std::string& purpose = {}, bool target_configured = true);

    const std::string& target_name() const { return options().target; }
    Reached* target = nullptr;              // the target, when reached
    std::vector<Reached*> others;           // every other region reached
    std::vector<Reached*> everyone;         // every region reached, the target too
    std::vector<std::string> down;          // the regions not reached, the target too
    std::vector<std::string> others_down;   // ... but the target

private:
    const Mesh& mesh_;
    std::vector<Reached> reached_;
};

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
