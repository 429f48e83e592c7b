// causalctl: builds, watches and verifies a pg_causal mesh of regional
// PostgreSQL primaries.

#include <boost/program_options.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "mesh.hpp"

namespace po = boost::program_options;
using namespace causalctl;

namespace {

const char* kHelp = R"(causalctl: build, watch and verify a pg_causal mesh

usage: causalctl COMMAND [REGION] [options]

commands
  init      build the full mesh, or complete it: node ids, causal.region,
            registration, the publications causal_mesh, causal_messages and
            causal_copy, a subscription in every region to every other
            (--apply-commit local, the default: each applied transaction is
            flushed and acknowledged at once, for causal.await_replicated();
            off: flushed in batches, more messages per second). Idempotent. Refuses (changing nothing) when
            a region cannot be reached, lacks pg_causal in
            shared_preload_libraries or wal_level = logical, or when two
            regions share a node id. Run it again after causal.enable() on a
            new table (every region needs the table): the subscriptions are
            refreshed and copy what each region lacks. A region that lacks a
            table the others publish is configured, but its links wait for
            the table (exit 1): create it, causal.enable() it, init again.
  status    each region's node id, epoch, state and clock offset; each link's
            state, lag (bytes and ms), last message, and the WAL its slot
            holds, with a warning when that passes --max-slot-wal-mb.
  verify    whether every region holds the same messages and presents the
            same order: each conversation's causal.merge history is hashed in
            every region and compared, with the fencing state. Lists what
            differs and which messages each region lacks.
  failover REGION
            fence REGION with a new epoch, with the votes of a majority of
            the regions (each votes by causal.vote_fence: one fence per
            configuration of the mesh, and never one that would leave less
            than a majority active). Refuses when fewer than a majority other
            than REGION can be reached, or when a majority still hears
            REGION's heartbeat (--dead-after, default 3 s; --force to fence
            a live region). Reports when every survivor has the fence.
  rejoin REGION
            wait until REGION has everything the survivors had and they have
            everything it wrote (its orphans included), then lift its fence
            with a new epoch (--wait, default 60 s).

regions
  --region NAME=DSN     repeated, one per region (libpq connection strings)
  --link FROM:TO=DSN    the DSN region TO subscribes to FROM with, when it
                        differs from FROM's own (a proxy, a private address)
  --config FILE         the same options as lines of a file:
                            region = us-east=host=10.0.0.1 dbname=chat
                            link = us-east:eu-west=host=10.1.0.1 dbname=chat
                        default: $CAUSALCTL_CONFIG

exit codes
  0  done; converged; every link streaming
  1  verify: the regions differ; status: a warning; init: some links wait
     for tables a region lacks (create them there, run init again)
  2  bad command line or configuration
  3  a region could not be reached, or a statement failed there
  4  refused: the command would be unsafe, and changed nothing

examples
  causalctl init --region us-east='host=10.0.0.1 dbname=chat' \
                 --region eu-west='host=10.1.0.1 dbname=chat' \
                 --region ap-south='host=10.2.0.1 dbname=chat'
  export CAUSALCTL_CONFIG=/etc/causalctl.conf
  causalctl status
  causalctl verify --conversation 42 --wait 10 --json
  causalctl failover us-east        # us-east is down: fence it, move its users
  causalctl rejoin us-east          # it is back: catch up, lift the fence
)";

}  // namespace

int main(int argc, char** argv) {
    po::options_description options("options");
    options.add_options()
        ("help,h", "this text")
        ("region", po::value<std::vector<std::string>>()->composing(), "NAME=DSN, repeated")
        ("link", po::value<std::vector<std::string>>()->composing(), "FROM:TO=DSN, repeated")
        ("config", po::value<std::string>(), "a file of region = and link = lines")
        ("json", po::bool_switch(), "one JSON document on stdout")
        ("connect-timeout", po::value<int>()->default_value(5), "seconds to reach a region")
        ("conversation", po::value<std::string>(), "verify: only this conversation")
        ("wait", po::value<double>()->default_value(0), "verify, failover, rejoin: seconds to wait")
        ("max-slot-wal-mb", po::value<long long>()->default_value(1024), "status: warn above this")
        ("force", po::bool_switch(), "failover: fence a region its peers still hear")
        ("dead-after", po::value<double>()->default_value(3), "failover: heard within this many seconds = alive")
        ("apply-commit", po::value<std::string>()->default_value("local"),
         "init: the subscriptions' synchronous_commit, local (fast RPO-zero acknowledgements) or off (more throughput)")
        ("command", po::value<std::string>(), "init, status, verify, failover, rejoin")
        ("target", po::value<std::string>(), "failover, rejoin: the region");
    po::positional_options_description positional;
    positional.add("command", 1).add("target", 1);

    Options settings;
    std::string command;
    std::vector<std::string> region_specs, link_specs;
    try {
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
        if (vm.count("help") || argc < 2) {
            std::cout << kHelp;
            return vm.count("help") ? kOk : kUsage;
        }
        std::string config_path;
        if (vm.count("config")) config_path = vm["config"].as<std::string>();
        else if (const char* env = std::getenv("CAUSALCTL_CONFIG")) config_path = env;
        if (!config_path.empty()) {
            std::ifstream file(config_path);
            if (!file) throw po::error("cannot read the configuration file \"" + config_path + "\"");
            po::store(po::parse_config_file(file, options), vm);
        }
        po::notify(vm);
        if (!vm.count("command")) throw po::error("no command: init, status or verify");
        command = vm["command"].as<std::string>();
        if (vm.count("region")) region_specs = vm["region"].as<std::vector<std::string>>();
        if (vm.count("link")) link_specs = vm["link"].as<std::vector<std::string>>();
        settings.json = vm["json"].as<bool>();
        settings.connect_timeout_s = vm["connect-timeout"].as<int>();
        if (vm.count("conversation")) settings.conversation = vm["conversation"].as<std::string>();
        settings.wait_s = vm["wait"].as<double>();
        settings.max_slot_wal_mb = vm["max-slot-wal-mb"].as<long long>();
        settings.force = vm["force"].as<bool>();
        settings.dead_after_s = vm["dead-after"].as<double>();
        settings.apply_commit = vm["apply-commit"].as<std::string>();
        if (settings.apply_commit != "local" && settings.apply_commit != "off")
            throw po::error("--apply-commit is local or off, not \"" + settings.apply_commit + "\"");
        if (vm.count("target")) settings.target = vm["target"].as<std::string>();
        if ((command == "failover" || command == "rejoin") && settings.target.empty())
            throw po::error(command + " needs the region: causalctl " + command + " REGION");
        if (region_specs.empty()) throw po::error("no regions: --region NAME=DSN, --config or $CAUSALCTL_CONFIG");
    } catch (const po::error& e) {
        std::cerr << "causalctl: " << e.what() << "\nTry causalctl --help.\n";
        return kUsage;
    }
    try {
        Mesh mesh(region_specs, link_specs);
        if (command == "init") return init(mesh, settings, std::cout);
        if (command == "status") return status(mesh, settings, std::cout);
        if (command == "verify") return verify(mesh, settings, std::cout);
        if (command == "failover") return failover(mesh, settings, std::cout);
        if (command == "rejoin") return rejoin(mesh, settings, std::cout);
        std::cerr << "causalctl: unknown command \"" << command << "\"\nTry causalctl --help.\n";
        return kUsage;
    } catch (const std::invalid_argument& e) {
        std::cerr << "causalctl: " << e.what() << "\nTry causalctl --help.\n";
        return kUsage;
    }
}
