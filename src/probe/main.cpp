// causal-probe: cross-region delivery latency of a pg_causal mesh, open loop.
//
// The schedule fixes every message's intended send time before the run
// (open_loop.hpp); the messages go to the regions in turn, and a pool of
// connections per region sends each one at its time, or as soon as a
// connection is free when it is late. One listener thread holds a LISTEN
// connection to every region and notes when each message is announced there
// (the apply path's NOTIFY fires at the applying commit, when the row becomes
// readable). Latency is that announcement in region B minus the message's
// intended send time, for every message and every region other than its
// own; one clock, this process's. The achieved rate comes from the clock,
// and a run that could not keep to its schedule says so and exits 4.
//
//   causal-probe --region us-east=DSN --region eu-west=DSN ... --rate 1000 --seconds 20

#include <libpq-fe.h>
#include <poll.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "open_loop.hpp"

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using causal::probe::percentile;
using causal::probe::Schedule;

namespace {

struct RegionSpec {
    std::string name, dsn;
};

PGconn* connect(const RegionSpec& region) {
    PGconn* conn = PQconnectdb(region.dsn.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        std::cerr << "causal-probe: " << region.name << ": " << PQerrorMessage(conn);
        std::exit(3);
    }
    return conn;
}

struct Sent {
    size_t origin;
    Clock::time_point intended;   // when the schedule meant it to be sent
    Clock::time_point committed;  // when the INSERT's commit returned
};

struct Received {
    size_t region;
    std::string key;
    Clock::time_point at;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::vector<double> sorted(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values;
}

void print_quantiles(const char* what, const std::vector<double>& values) {
    if (values.empty()) return;
    std::printf("%s: p50 %.1f  p99 %.1f  max %.1f\n", what, percentile(values, 0.50), percentile(values, 0.99),
                values.back());
}

// Everything the writers record, under one lock.
struct Ledger {
    std::mutex lock;
    std::unordered_map<std::string, Sent> sent;  // by key (the hlc, for pg_causal)
    std::vector<double> commit_ms;               // intended send to acknowledgement
    std::vector<double> late_ms;                 // intended send to actual send
    std::vector<std::string> acked;              // "<region> <msg_id>"
    std::vector<size_t> acked_in;                // per region
    Clock::time_point last_ack{};
};

}  // namespace

int main(int argc, char** argv) {
    po::options_description options("causal-probe options");
    options.add_options()
        ("help,h", "this text")
        ("region", po::value<std::vector<std::string>>()->required(), "NAME=DSN, repeated")
        ("rate", po::value<double>()->default_value(100), "messages per second, across all regions")
        ("seconds", po::value<double>()->default_value(10), "how long the schedule runs")
        ("connections", po::value<int>()->default_value(4), "writer connections per region")
        ("late-limit", po::value<double>(), "stop sending this many seconds after the schedule ends (default: --seconds)")
        ("drain", po::value<double>()->default_value(10), "seconds to wait for the last deliveries")
        ("conversations", po::value<int>()->default_value(100), "conversations written to")
        ("table", po::value<std::string>()->default_value("chat.messages"), "the message table (notify on)")
        ("key-column", po::value<std::string>()->default_value("hlc"),
         "the column whose text the NOTIFY payload carries after the kind (causal.notify_payload = hlc)")
        ("slowest", po::value<int>()->default_value(0), "also print the N slowest deliveries")
        ("synchronous", po::bool_switch(), "acknowledge a message only once another region has it (causal.await_replicated)")
        ("ack-log", po::value<std::string>(), "write '<region> <msg_id>' for every acknowledged message to this file")
        ("quiet-failures", po::bool_switch(), "a region that goes away stops its writers; not an error");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, options), vm);
        if (vm.count("help")) {
            std::cout << options;
            return 0;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "causal-probe: " << e.what() << '\n' << options;
        return 2;
    }
    std::vector<RegionSpec> regions;
    for (const auto& spec : vm["region"].as<std::vector<std::string>>()) {
        auto eq = spec.find('=');
        if (eq == std::string::npos) {
            std::cerr << "causal-probe: --region wants NAME=DSN\n";
            return 2;
        }
        regions.push_back({spec.substr(0, eq), spec.substr(eq + 1)});
    }
    const size_t n = regions.size();
    const Schedule schedule{vm["rate"].as<double>(), vm["seconds"].as<double>(), n};
    const int connections = vm["connections"].as<int>();
    const double late_limit = vm.count("late-limit") ? vm["late-limit"].as<double>() : schedule.seconds;
    const int conversations = vm["conversations"].as<int>();
    const std::string table = vm["table"].as<std::string>();
    const std::string key_column = vm["key-column"].as<std::string>();
    if (schedule.rate <= 0 || schedule.seconds <= 0 || connections < 1 || conversations < 1) {
        std::cerr << "causal-probe: --rate, --seconds, --connections and --conversations must be positive\n";
        return 2;
    }

    // Listeners first, so nothing is announced before they listen.
    std::vector<PGconn*> listeners;
    for (const auto& region : regions) {
        PGconn* conn = connect(region);
        std::string channel = table;  // the trigger's channel: "<schema>.<table>"
        PQclear(PQexec(conn, ("LISTEN \"" + channel + "\"").c_str()));
        listeners.push_back(conn);
    }
    std::mutex received_lock;
    std::vector<Received> received;
    std::atomic<bool> listening{true};
    std::thread listener([&] {
        std::vector<pollfd> fds(n);
        for (size_t i = 0; i < n; ++i) fds[i] = {PQsocket(listeners[i]), POLLIN, 0};
        while (listening) {
            if (poll(fds.data(), n, 50) <= 0) continue;
            const auto now = Clock::now();
            for (size_t i = 0; i < n; ++i) {
                if (fds[i].revents == 0) continue;
                PQconsumeInput(listeners[i]);
                while (PGnotify* note = PQnotifies(listeners[i])) {
                    // "<kind> <key>": causal.notify_payload = hlc on the servers
                    std::string payload = note->extra;
                    auto space = payload.find(' ');
                    std::lock_guard<std::mutex> guard(received_lock);
                    if (space != std::string::npos) received.push_back({i, payload.substr(space + 1), now});
                    PQfreemem(note);
                }
                // The region went away: libpq has closed the socket, and
                // polling it would return at once, forever (a busy loop).
                if (PQstatus(listeners[i]) != CONNECTION_OK) fds[i].fd = -1;
            }
        }
    });

    // Every connection first: connecting is not part of the schedule.
    std::vector<std::vector<PGconn*>> pools(n);
    for (size_t w = 0; w < n; ++w)
        for (int c = 0; c < connections; ++c) pools[w].push_back(connect(regions[w]));

    Ledger ledger;
    ledger.acked_in.assign(n, 0);
    const bool synchronous = vm["synchronous"].as<bool>();
    const bool quiet_failures = vm["quiet-failures"].as<bool>();
    std::atomic<long> failures{0};
    std::vector<std::atomic<long>> failures_in(n);
    const auto start = Clock::now() + std::chrono::milliseconds(200);
    const auto give_up = start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(schedule.seconds + late_limit));
    std::vector<std::atomic<size_t>> next(n);  // each region's next message, shared by its pool
    std::vector<std::atomic<bool>> region_gone(n);
    const std::string sql = "INSERT INTO " + table +
                            " (conversation_id, sender, body) VALUES ($1::bigint, 'probe', 'latency probe')"
                            " RETURNING \"" + key_column + "\"::text, msg_id::text";
    // One connection of region w's pool: takes the region's next message,
    // sends it at its intended time, or at once if that has passed.
    auto write = [&](size_t w, PGconn* conn) {
        for (;;) {
            const size_t k = next[w]++;
            if (k >= schedule.messages_of(w) || region_gone[w]) break;
            const size_t j = schedule.message(w, k);
            const auto intended = start + std::chrono::duration_cast<Clock::duration>(schedule.intended(j));
            std::this_thread::sleep_until(intended);
            const auto asked = Clock::now();
            if (asked > give_up) break;  // what is left counts as never sent
            std::string conversation = std::to_string(1 + j % static_cast<size_t>(conversations));
            const char* values[] = {conversation.c_str()};
            PGresult* r = PQexecParams(conn, sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0);
            const auto committed = Clock::now();
            bool acknowledged = PQresultStatus(r) == PGRES_TUPLES_OK;
            if (acknowledged && synchronous) {
                PGresult* wait = PQexec(conn, "SELECT causal.await_replicated()");
                acknowledged = PQresultStatus(wait) == PGRES_TUPLES_OK;
                PQclear(wait);
            }
            const auto done = Clock::now();
            if (acknowledged) {
                std::lock_guard<std::mutex> guard(ledger.lock);
                ledger.sent[PQgetvalue(r, 0, 0)] = {w, intended, committed};
                ledger.commit_ms.push_back(ms(done - intended));
                ledger.late_ms.push_back(ms(asked - intended));
                ledger.acked.push_back(regions[w].name + " " + PQgetvalue(r, 0, 1));
                ++ledger.acked_in[w];
                ledger.last_ack = std::max(ledger.last_ack, done);
            }
            PQclear(r);
            if (acknowledged) continue;
            if (PQstatus(conn) != CONNECTION_OK && quiet_failures) {
                region_gone[w] = true;  // the region is gone; what it acknowledged is what counts
                break;
            }
            ++failures;
            ++failures_in[w];
        }
    };
    std::vector<std::thread> writers;
    for (size_t w = 0; w < n; ++w)
        for (PGconn* conn : pools[w]) writers.emplace_back(write, w, conn);
    for (auto& t : writers) t.join();
    for (auto& pool : pools)
        for (PGconn* conn : pool) PQfinish(conn);

    const auto written = Clock::now();
    const size_t expected = ledger.sent.size() * (n - 1);
    const auto drain_until = written + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(vm["drain"].as<double>()));
    auto delivered = [&] {
        std::lock_guard<std::mutex> guard(received_lock);
        size_t count = 0;
        for (const auto& r : received) {
            auto s = ledger.sent.find(r.key);
            if (s != ledger.sent.end() && s->second.origin != r.region) ++count;
        }
        return count;
    };
    while (Clock::now() < drain_until && delivered() < expected)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    listening = false;
    listener.join();

    std::vector<double> latencies, from_commit;
    std::vector<std::tuple<double, double, size_t, size_t>> slow;  // latency, intended at, from, to
    for (const auto& r : received) {
        auto s = ledger.sent.find(r.key);
        if (s == ledger.sent.end() || s->second.origin == r.region) continue;
        latencies.push_back(ms(r.at - s->second.intended));
        from_commit.push_back(ms(r.at - s->second.committed));
        slow.emplace_back(latencies.back(), ms(s->second.intended - start), s->second.origin, r.region);
    }
    std::sort(slow.rbegin(), slow.rend());
    for (int i = 0; i < vm["slowest"].as<int>() && i < static_cast<int>(slow.size()); ++i)
        std::printf("slow: %.1f ms, meant for +%.0f ms, %s -> %s\n", std::get<0>(slow[i]), std::get<1>(slow[i]),
                    regions[std::get<2>(slow[i])].name.c_str(), regions[std::get<3>(slow[i])].name.c_str());
    if (vm.count("ack-log")) {
        FILE* log = std::fopen(vm["ack-log"].as<std::string>().c_str(), "w");
        for (const auto& line : ledger.acked) std::fprintf(log, "%s\n", line.c_str());
        std::fclose(log);
    }

    const double taken = ledger.sent.empty() ? 0 : std::chrono::duration<double>(ledger.last_ack - start).count();
    // A region that went away (--quiet-failures) leaves its messages unsent:
    // not the probe falling behind.
    size_t abandoned = 0;
    for (size_t w = 0; w < n; ++w)
        if (region_gone[w])
            abandoned += schedule.messages_of(w) - std::min(schedule.messages_of(w),
                                                            ledger.acked_in[w] + static_cast<size_t>(failures_in[w].load()));
    const auto verdict = causal::probe::judge(schedule, ledger.sent.size(),
                                              static_cast<size_t>(failures.load()) + abandoned, taken);
    std::printf("rate %.0f/s for %.1f s (achieved %.0f/s: %zu messages written in %.2f s), %zu of %zu deliveries, "
                "%ld failed writes\n",
                schedule.rate, schedule.seconds, verdict.achieved_rate, ledger.sent.size(), taken, latencies.size(),
                expected, failures.load());
    latencies = sorted(std::move(latencies));
    print_quantiles("latency ms (from the intended send time)", latencies);
    print_quantiles("latency ms (from the commit)", sorted(std::move(from_commit)));
    print_quantiles(synchronous ? "commit ms (from the intended send time, with causal.await_replicated)"
                                : "commit ms (from the intended send time)",
                    sorted(std::move(ledger.commit_ms)));
    print_quantiles("sent late by ms", sorted(std::move(ledger.late_ms)));
    if (abandoned > 0) std::printf("not sent: %zu messages of regions that went away\n", abandoned);
    if (!verdict.kept_up) std::printf("FELL BEHIND: %s\n", verdict.why.c_str());
    for (PGconn* conn : listeners) PQfinish(conn);
    if (latencies.size() != expected || failures != 0) return 1;
    return verdict.kept_up ? 0 : 4;
}
