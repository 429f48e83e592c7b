// causalctl: builds, watches and verifies a pg_causal mesh of regional
// PostgreSQL primaries.

#include <boost/program_options.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "core/numbers.hpp"
#include "json.hpp"
#include "mesh.hpp"
#include "pg.hpp"

namespace po = boost::program_options;
using namespace causalctl;

namespace {

// What `causalctl --help` prints, and `causalctl COMMAND --help` (or
// `causalctl help COMMAND`) prints one command's part of.
struct CommandHelp {
    const char* name;
    const char* summary;
    const char* usage;
    const char* text;
};

const CommandHelp kCommands[] = {
    {"init", "build the mesh, or complete it",
     "causalctl init [--apply-commit local|off]", R"(
Builds the full mesh, or completes it: node ids, causal.region,
registration, the publications causal_mesh, causal_messages and
causal_copy, a subscription in every region to every other. Idempotent:
run it again after causal.enable() on a new table (every region needs the
table): the subscriptions are refreshed and copy what each region lacks. A
region that lacks a table the others publish is configured, but its links
wait for the table (exit 1): create it, causal.enable() it, init again.
Refuses, changing nothing and listing every problem it found, when a region
cannot be reached, lacks pg_causal in shared_preload_libraries or
wal_level = logical, runs another version of pg_causal, or when two regions
share a node id. Needs a superuser (ALTER SYSTEM, CREATE SUBSCRIPTION).
  --apply-commit local  (default) each applied transaction is flushed and
                        acknowledged at once: causal.await_replicated()
                        returns in about a round trip
  --apply-commit off    flushed in batches: more messages per second
)"},
    {"status", "the regions and the links between them",
     "causalctl status [--max-slot-wal-mb N]", R"(
Each region's node id, epoch, state and clock offset; each link's state
(streaming, starting, down, lost, missing), lag in bytes and ms, last
message, the WAL its slot holds, the apply worker's error counts and its
last error with what to do about it; the slots and subscriptions of links
to a region that is registered but not given (known by the names init
gives links), and subscriptions to the mesh's publications under another
name. Exit 1 on any warning.
  --max-slot-wal-mb N   warn when a slot holds more WAL (default 1024)
)"},
    {"verify", "whether every region holds the same history",
     "causalctl verify [--conversation ID] [--wait SECONDS]", R"(
Whether every region holds the same messages and presents the same order:
each conversation's causal.merge history is hashed in every region and
compared, with the fencing state. Lists what differs and which messages
each region lacks. Exit 1 when they differ.
  --conversation ID     only this conversation
  --wait SECONDS        retry until they converge (default 0: look once)
)"},
    {"failover", "fence a dead region, with a majority's votes",
     "causalctl failover REGION [--wait SECONDS] [--force] [--dead-after SECONDS]", R"(
Fences REGION with a new epoch, with the votes of a majority of the regions
(each votes by causal.vote_fence: one fence per configuration of the mesh,
and never one that would leave less than a majority active), then carries
the fence to every region it reaches itself, without waiting for
replication. Refuses when fewer than a majority other than REGION can be
reached, or when a majority still hears REGION's heartbeat. Run again after
a partial success, it finishes the job. Says which region REGION's users
go to: the one the fenced region's own errors name (5C001's HINT).
  --dead-after SECONDS  heard within this long = alive (default 3)
  --wait SECONDS        wait up to this long for REGION to count as dead
                        (default 0: refuse at once while it is heard)
  --force               fence a region its peers still hear
)"},
    {"rejoin", "lift a region's fence once it has caught up",
     "causalctl rejoin REGION [--wait SECONDS]", R"(
Waits until REGION has everything the survivors had and they have
everything it wrote (its orphans included), then lifts its fence with a new
epoch. Refuses when a slot of one of its links is lost: the region must be
rebuilt with causalctl reseed.
  --wait SECONDS        how long to wait for the links (default 60)
)"},
    {"remove", "a region leaves the mesh for good",
     "causalctl remove REGION [--force] [--wait SECONDS]", R"(
Drops REGION's links in every other region (its subscriptions, and the
slots that keep WAL for it) and its registration, so that the majority is
counted over the rest; in REGION too, when it can be reached. Refuses,
changing nothing and saying why, when REGION is not fenced (causalctl
failover it first), when it cannot be reached (what it wrote that no other
region received would be lost with it), when the others have not received
everything it wrote within --wait (default 60 s), or when another region
cannot be reached. REGION need not be in the configuration; take it out
afterwards. Needs a superuser.
  --force               remove it although it cannot be reached, or has
                        not delivered everything: what only it holds is
                        lost (an active region is never removed)
)"},
    {"reseed", "rebuild a fenced region from its peers",
     "causalctl reseed REGION [--wait SECONDS]", R"(
For a fenced region whose links cannot bring it back: a slot lost to
max_slot_wal_keep_size (status says "lost"), or the region restored from a
backup or a dump (which brings its source's subscriptions). Drops every
link to and from it, makes them anew (causalctl init), each copying every
row its publisher holds (the apply path keeps one of each message), waits
for the copies (--wait, default 120 s), then rejoins it. Every region must
be reachable. Needs a superuser. Exit 1 when the copies do not finish in
time or rejoin refuses: the links are new, the fence stays; causalctl
rejoin REGION once they have caught up. With --json, one document: what
it dropped, and init's and rejoin's documents as "init" and "rejoin".
)"},
    {"ddl", "one schema change in every region",
     "causalctl ddl STATEMENT", R"(
Runs one statement (ALTER TABLE ..., CREATE INDEX ...) in every region, in
the order that keeps the links flowing: in a transaction in each region
first, in every region at once (each holds the table's lock), then
committed region by region, so a row written after the change in one
region waits, in every other, for the change there. If it fails anywhere,
no region changes. Name tables by their schema (causalctl pins search_path
to pg_catalog). CREATE INDEX CONCURRENTLY (and DROP, REINDEX) runs region
by region. Every region must be reachable.
Refuses, judging by the catalog inside the open transactions, before and
after the statement, whatever its text: a replicated table (a message
table, or one of the mesh's publications) dropped, renamed or moved, a
column of one dropped or renamed, a type changed to one the old values
may not fit (kept: a type the old one casts to implicitly, a wider
modifier), pg_causal's columns or the conversation column changed, a
message table taken out of its shape or made an ordinary table.
written before such a change would stop the links (docs/operations.md, Schema
changes); every region rolls back, and it says what and where.
  --lock-timeout S      how long each region waits for the table's lock
                        (default 10)
  --idle-timeout S      how long a region keeps the transaction while
                        causalctl says nothing (default 60): the longest a
                        killed or frozen causalctl's locks outlive it. Keep
                        it above the time the statement takes in the
                        slowest region (else that change fails, changing
                        nothing)
)"},
};

const char* kGeneralHelp = R"(
regions
  --region NAME=DSN     repeated, one per region (libpq connection strings;
                        name the user: user=...)
  --link FROM:TO=DSN    the DSN region TO subscribes to FROM with, when it
                        differs from FROM's own (a proxy, a private address)
  --config FILE         the same options as lines of a file:
                            region = us-east=host=10.0.0.1 user=postgres dbname=chat
                            link = us-east:eu-west=host=10.1.0.1 user=postgres dbname=chat
                        default: $CAUSALCTL_CONFIG

options of every command
  --json                one JSON document on stdout instead of text, its
                        first member "ok" (true: exit 0), with "refused" or
                        "error" (and "region") when the command did not
                        finish
  --connect-timeout S   seconds to reach a region (default 5, at least 1)
  --lock-timeout S      seconds a statement waits for a lock before it fails
                        (default 10): causalctl's waiting request would queue
                        every later one on the table behind it
  --idle-timeout S      seconds a region keeps a transaction of causalctl's
                        open while causalctl sends nothing (default 60;
                        idle_in_transaction_session_timeout): a causalctl
                        killed, frozen or cut off mid-ddl holds no lock longer
  -h, --help            this text; with a command, that command's

Results go to stdout, errors and refusals to stderr (with --json, both are
the document on stdout). A number option is all number or refused (exit 2):
whole seconds for --connect-timeout, seconds such as 2 or 0.5 for the
others, no unit.

exit codes
  0  done; converged; every link streaming
  1  verify: the regions differ; status: a warning; init: some links wait
     for tables a region lacks (create them there, run init again);
     rejoin: not every region sees it active yet; reseed: its links are
     new, but it has not rejoined yet
  2  bad command line or configuration
  3  a region could not be reached, or a statement failed there (also:
     causalctl stopped on an error it did not expect; the message says it)
  4  refused: the command would be unsafe, and changed nothing

examples
  causalctl init --region us-east='host=10.0.0.1 user=postgres dbname=chat' \
                 --region eu-west='host=10.1.0.1 user=postgres dbname=chat' \
                 --region ap-south='host=10.2.0.1 user=postgres dbname=chat'
  export CAUSALCTL_CONFIG=/etc/causalctl.conf
  causalctl status
  causalctl verify --conversation 42 --wait 10 --json
  causalctl failover us-east --wait 10   # us-east is down: fence it, move its users
  causalctl rejoin us-east               # it is back: catch up, lift the fence
)";

const CommandHelp* find_command(const std::string& name) {
    for (const auto& c : kCommands)
        if (name == c.name) return &c;
    return nullptr;
}

void print_help(std::ostream& out, const CommandHelp* command) {
    if (command != nullptr) {
        out << "usage: " << command->usage << " [regions] [--json] [--connect-timeout S]\n" << command->text
            << "\nRegions: --region NAME=DSN (repeated), --config FILE or $CAUSALCTL_CONFIG; causalctl --help for all.\n";
        return;
    }
    out << "causalctl: build, watch and repair a pg_causal mesh\n\nusage: causalctl COMMAND [REGION] [options]\n\ncommands\n";
    for (const auto& c : kCommands) {
        char line[128];
        std::snprintf(line, sizeof line, "  %-9s %s\n", c.name, c.summary);
        out << line;
    }
    for (const auto& c : kCommands) out << '\n' << c.usage << c.text;
    out << kGeneralHelp;
}

std::string command_names() {
    std::string names;
    for (const auto& c : kCommands) names += (names.empty() ? "" : ", ") + std::string(c.name);
    return names;
}

// The longest time an option takes, in seconds: PostgreSQL's timeouts are
// an int of milliseconds.
constexpr double kMaxSeconds = 2147483;

// A number option, all of its text a number in range, or a usage error
// that names the option (causal::parse_integer and parse_decimal).
long long integer_option(const po::variables_map& vm, const char* name, long long min, long long max) {
    try {
        return causal::parse_integer(vm[name].as<std::string>(), min, max);
    } catch (const causal::Error& e) {
        throw po::error(std::string("--") + name + ": " + e.what());
    }
}
double seconds_option(const po::variables_map& vm, const char* name, double min) {
    try {
        return causal::parse_decimal(vm[name].as<std::string>(), min, kMaxSeconds);
    } catch (const causal::Error& e) {
        throw po::error(std::string("--") + name + " (seconds): " + e.what());
    }
}

// What a command that stopped on an exception it did not expect says: on
// stderr, or as its JSON document; never std::terminate.
int stopped(const Options& settings, const std::string& command, const std::string& region, const std::string& what) {
    if (settings.json) {
        json::Object o;
        o.add("ok", "false");
        if (!region.empty()) o.add("region", json::string(region));
        std::cout << o.add("error", json::string(what)).str() << '\n';
    } else {
        std::cerr << "causalctl" << (command.empty() ? "" : " " + command) << ": " << what << '\n';
    }
    return kUnreachable;
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description options("options");
    options.add_options()
        ("help,h", "this text")
        ("region", po::value<std::vector<std::string>>()->composing(), "NAME=DSN, repeated")
        ("link", po::value<std::vector<std::string>>()->composing(), "FROM:TO=DSN, repeated")
        ("config", po::value<std::string>(), "a file of region = and link = lines")
        ("json", po::bool_switch(), "one JSON document on stdout")
        ("connect-timeout", po::value<std::string>()->default_value("5"), "seconds to reach a region")
        ("lock-timeout", po::value<std::string>()->default_value("10"), "seconds a statement waits for a lock")
        ("idle-timeout", po::value<std::string>()->default_value("60"),
         "seconds a region keeps causalctl's open transaction while it says nothing")
        ("conversation", po::value<std::string>(), "verify: only this conversation")
        ("wait", po::value<std::string>(), "verify, failover, rejoin: seconds to wait")
        ("max-slot-wal-mb", po::value<std::string>()->default_value("1024"), "status: warn above this")
        ("force", po::bool_switch(), "failover: fence a region its peers still hear")
        ("dead-after", po::value<std::string>()->default_value("3"), "failover: heard within this many seconds = alive")
        ("apply-commit", po::value<std::string>()->default_value("local"),
         "init: the subscriptions' synchronous_commit, local (fast RPO-zero acknowledgements) or off (more throughput)")
        ("command", po::value<std::string>(), "the command")
        ("target", po::value<std::string>(), "failover, rejoin: the region; ddl: the statement");
    po::positional_options_description positional;
    positional.add("command", 1).add("target", 1);

    Options settings;
    std::string command;
    std::vector<std::string> region_specs, link_specs;
    try {
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
        // `causalctl help [COMMAND]` is `causalctl [COMMAND] --help`
        std::string first = vm.count("command") ? vm["command"].as<std::string>() : "";
        const bool help = vm.count("help") || first == "help";
        if (first == "help") first = vm.count("target") ? vm["target"].as<std::string>() : "";
        if (help || argc < 2) {
            if (!first.empty() && find_command(first) == nullptr)
                throw po::error("unknown command \"" + first + "\" (commands: " + command_names() + ")");
            print_help(help ? std::cout : std::cerr, first.empty() ? nullptr : find_command(first));
            return help ? kOk : kUsage;
        }
        if (!first.empty() && find_command(first) == nullptr)
            throw po::error("unknown command \"" + first + "\" (commands: " + command_names() + ")");
        std::string config_path;
        if (vm.count("config")) config_path = vm["config"].as<std::string>();
        else if (const char* env = std::getenv("CAUSALCTL_CONFIG")) config_path = env;
        if (!config_path.empty()) {
            std::ifstream file(config_path);
            if (!file) throw po::error("cannot read the configuration file \"" + config_path + "\"");
            po::store(po::parse_config_file(file, options), vm);
        }
        po::notify(vm);
        if (!vm.count("command")) throw po::error("no command: " + command_names());
        command = vm["command"].as<std::string>();
        if (vm.count("region")) region_specs = vm["region"].as<std::vector<std::string>>();
        if (vm.count("link")) link_specs = vm["link"].as<std::vector<std::string>>();
        settings.json = vm["json"].as<bool>();
        // libpq waits forever for a connect_timeout of 0.
        settings.session.connect_timeout_s = static_cast<int>(integer_option(vm, "connect-timeout", 1, kMaxSeconds));
        settings.session.lock_timeout_s = seconds_option(vm, "lock-timeout", 0.001);
        settings.session.idle_in_transaction_s = seconds_option(vm, "idle-timeout", 0.001);
        if (vm.count("conversation")) settings.conversation = vm["conversation"].as<std::string>();
        if (vm.count("wait")) settings.wait_s = seconds_option(vm, "wait", 0);
        // Compared in bytes: MB * 2^20 must fit.
        settings.max_slot_wal_mb = integer_option(vm, "max-slot-wal-mb", 0, std::numeric_limits<long long>::max() >> 20);
        settings.force = vm["force"].as<bool>();
        settings.dead_after_s = seconds_option(vm, "dead-after", 0.001);
        settings.apply_commit = vm["apply-commit"].as<std::string>();
        if (settings.apply_commit != "local" && settings.apply_commit != "off")
            throw po::error("--apply-commit is local or off, not \"" + settings.apply_commit + "\"");
        if (vm.count("target")) settings.target = vm["target"].as<std::string>();
        if ((command == "failover" || command == "rejoin" || command == "remove" || command == "reseed") &&
            settings.target.empty())
            throw po::error(command + " needs the region: causalctl " + command + " REGION");
        if (command == "ddl" && settings.target.empty())
            throw po::error("ddl needs the statement: causalctl ddl 'ALTER TABLE ...'");
        if (region_specs.empty()) throw po::error("no regions: --region NAME=DSN, --config or $CAUSALCTL_CONFIG");
    } catch (const po::error& e) {
        std::cerr << "causalctl: " << e.what() << "\nTry causalctl --help.\n";
        return kUsage;
    } catch (const std::exception& e) {
        return stopped(settings, "", "", std::string("stopped on an unexpected error: ") + e.what());
    } catch (...) {
        return stopped(settings, "", "", "stopped on an unexpected error of no known kind");
    }
    std::optional<Mesh> mesh;
    try {
        mesh.emplace(region_specs, link_specs);
    } catch (const std::invalid_argument& e) {
        std::cerr << "causalctl: " << e.what() << "\nTry causalctl --help.\n";
        return kUsage;
    }
    // Every command says what stopped it and exits non-zero, whatever it
    // is: a statement that failed where a command did not expect it, or
    // anything else thrown (out of memory, a bug).
    try {
        if (command == "init") return init(*mesh, settings, std::cout, std::cerr);
        if (command == "status") return status(*mesh, settings, std::cout, std::cerr);
        if (command == "verify") return verify(*mesh, settings, std::cout, std::cerr);
        if (command == "failover") return failover(*mesh, settings, std::cout, std::cerr);
        if (command == "ddl") return ddl(*mesh, settings, std::cout, std::cerr);
        if (command == "remove") return remove(*mesh, settings, std::cout, std::cerr);
        if (command == "reseed") return reseed(*mesh, settings, std::cout, std::cerr);
        return rejoin(*mesh, settings, std::cout, std::cerr);
    } catch (const DbError& e) {
        return stopped(settings, command, e.region(), e.what());
    } catch (const std::exception& e) {
        return stopped(settings, command, "", std::string("stopped on an unexpected error: ") + e.what());
    } catch (...) {
        return stopped(settings, command, "", "stopped on an unexpected error of no known kind");
    }
}
