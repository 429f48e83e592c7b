// causal-wan: the WAN delay proxy for tests and the demo (see proxy.hpp).
//
//   causal-wan serve --control 7000 --delay-ms 40 --jitter-ms 2
//       --link east-to-west=7001:127.0.0.1:5432 ...
//   causal-wan send --control 7000 cut east-to-west
#include <boost/program_options.hpp>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "proxy.hpp"

namespace po = boost::program_options;
using causal::wan::LinkConfig;

namespace {

// NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT
LinkConfig parse_link(const std::string& spec) {
    LinkConfig link;
    auto eq = spec.find('=');
    auto first = spec.find(':', eq);
    auto last = spec.rfind(':');
    if (eq == std::string::npos || first == std::string::npos || first == last)
        throw po::error("--link wants NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT, not \"" + spec + "\"");
    link.name = spec.substr(0, eq);
    link.listen_port = static_cast<uint16_t>(std::stoi(spec.substr(eq + 1, first - eq - 1)));
    link.target_host = spec.substr(first + 1, last - first - 1);
    link.target_port = static_cast<uint16_t>(std::stoi(spec.substr(last + 1)));
    return link;
}

const char* kUsage =
    "usage: causal-wan serve --control PORT --link NAME=LISTEN_PORT:HOST:PORT ... [--delay-ms N] [--jitter-ms N]\n"
    "       causal-wan send --control PORT COMMAND...\n"
    "\n"
    "A TCP proxy on 127.0.0.1 that delivers each link's bytes after a one-way\n"
    "delay (each direction), with jitter that never reorders a stream. Commands\n"
    "(send, or one per line on the control port): status, cut NAME, heal NAME,\n"
    "delay NAME MS [JITTER_MS]; NAME may be * for every link. A cut link drops\n"
    "what is sent into it, like a partition; heal closes the connections the\n"
    "cut broke, and the peers reconnect.\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cout << kUsage;
        return argc < 2 ? 2 : 0;
    }
    const std::string mode = argv[1];
    po::options_description options("options");
    options.add_options()
        ("help,h", "this text")
        ("control", po::value<int>()->required(), "control port on 127.0.0.1")
        ("link", po::value<std::vector<std::string>>()->default_value({}, ""), "NAME=LISTEN_PORT:HOST:PORT, repeated")
        ("delay-ms", po::value<int>()->default_value(0), "one-way delay of every link")
        ("jitter-ms", po::value<int>()->default_value(0), "uniform jitter, +/-")
        ("command", po::value<std::vector<std::string>>()->default_value({}, ""), "for send");
    po::positional_options_description positional;
    positional.add("command", -1);
    try {
        po::variables_map vm;
        po::store(po::command_line_parser(argc - 1, argv + 1).options(options).positional(positional).run(), vm);
        if (vm.count("help")) {
            std::cout << kUsage << '\n' << options;
            return 0;
        }
        po::notify(vm);
        const auto control = static_cast<uint16_t>(vm["control"].as<int>());
        if (mode == "send") {
            std::string line;
            for (const auto& word : vm["command"].as<std::vector<std::string>>()) line += (line.empty() ? "" : " ") + word;
            std::string reply = causal::wan::send_command(control, line);
            std::cout << reply;
            return reply.rfind("error", 0) == 0 || reply.find("\nerror") != std::string::npos ? 1 : 0;
        }
        if (mode != "serve") throw po::error("unknown mode \"" + mode + "\"");
        boost::asio::io_context io;
        causal::wan::Wan wan(io);
        for (const auto& spec : vm["link"].as<std::vector<std::string>>()) {
            LinkConfig link = parse_link(spec);
            link.delay = std::chrono::milliseconds(vm["delay-ms"].as<int>());
            link.jitter = std::chrono::milliseconds(vm["jitter-ms"].as<int>());
            wan.add(link);
        }
        wan.listen_for_control(control);
        boost::asio::signal_set stop(io, SIGINT, SIGTERM);
        stop.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
        std::cout << "causal-wan: serving" << std::endl;
        io.run();
        return 0;
    } catch (const po::error& e) {
        std::cerr << "causal-wan: " << e.what() << "\n\n" << kUsage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "causal-wan: " << e.what() << '\n';
        return 1;
    }
}
