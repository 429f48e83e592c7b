// causal-probe: cross-region delivery latency of a pg_causal mesh.
//
// One writer thread per region inserts messages at a steady rate (the total
// rate split evenly) and notes when each commit was acknowledged; one
// listener thread holds a LISTEN connection to every region and notes when
// each message is announced there (the apply path's NOTIFY fires at the
// applying commit, when the row becomes readable). Latency is announcement
// in region B minus acknowledgement in region A, for every message and
// every region other than its own. Both clocks are this process's.
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
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

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
    Clock::time_point committed;  // when the INSERT's commit returned
};

struct Received {
    size_t region;
    std::string hlc;
    Clock::time_point at;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
    po::options_description options("causal-probe options");
    options.add_options()
        ("help,h", "this text")
        ("region", po::value<std::vector<std::string>>()->required(), "NAME=DSN, repeated")
        ("rate", po::value<double>()->default_value(100), "messages per second, across all regions")
        ("seconds", po::value<double>()->default_value(10), "how long to write")
        ("drain", po::value<double>()->default_value(10), "seconds to wait for the last deliveries")
        ("conversations", po::value<int>()->default_value(100), "conversations written to")
        ("table", po::value<std::string>()->default_value("chat.messages"), "the message table (notify on)")
        ("slowest", po::value<int>()->default_value(0), "also print the N slowest deliveries")
        ("synchronous", po::bool_switch(), "acknowledge a message only once another region has it (causal.await_replicated)")
        ("ack-log", po::value<std::string>(), "write '<region> <msg_id>' for every acknowledged message to this file")
        ("quiet-failures", po::bool_switch(), "a region that goes away stops its writer; not an error");
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
    const double rate = vm["rate"].as<double>();
    const double seconds = vm["seconds"].as<double>();
    const int conversations = vm["conversations"].as<int>();
    const std::string table = vm["table"].as<std::string>();
    const size_t n = regions.size();

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
                    std::string payload = note->extra;  // "<conversation> <hlc>[ orphan]"
                    auto space = payload.find(' ');
                    auto end = payload.find(' ', space + 1);
                    std::lock_guard<std::mutex> guard(received_lock);
                    received.push_back({i, payload.substr(space + 1, end - space - 1), now});
                    PQfreemem(note);
                }
                // The region went away: libpq has closed the socket, and
                // polling it would return at once, forever (a busy loop).
                if (PQstatus(listeners[i]) != CONNECTION_OK) fds[i].fd = -1;
            }
        }
    });

    std::mutex sent_lock;
    std::unordered_map<std::string, Sent> sent;
    std::vector<double> commit_ms;  // send to acknowledgement
    std::vector<std::string> acked;  // "<region> <msg_id>"
    const bool synchronous = vm["synchronous"].as<bool>();
    const bool quiet_failures = vm["quiet-failures"].as<bool>();
    std::atomic<long> failures{0};
    const auto start = Clock::now() + std::chrono::milliseconds(200);
    const auto stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::thread> writers;
    for (size_t w = 0; w < n; ++w) {
        writers.emplace_back([&, w] {
            PGconn* conn = connect(regions[w]);
            const std::string sql = "INSERT INTO " + table +
                                    " (conversation_id, sender, body) VALUES ($1::bigint, 'probe', 'latency probe')"
                                    " RETURNING hlc::text, msg_id::text";
            const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(n / rate));
            auto next = start + interval * w / n;  // regions interleave
            long k = 0;
            while (next < stop) {
                std::this_thread::sleep_until(next);
                std::string conversation = std::to_string(1 + (k++ * n + w) % conversations);
                const char* values[] = {conversation.c_str()};
                const auto asked = Clock::now();
                PGresult* r = PQexecParams(conn, sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0);
                const auto committed = Clock::now();
                if (synchronous && PQresultStatus(r) == PGRES_TUPLES_OK) {
                    PGresult* wait = PQexec(conn, "SELECT causal.await_replicated()");
                    if (PQresultStatus(wait) != PGRES_TUPLES_OK) {  // not acknowledged
                        PQclear(wait);
                        PQclear(r);
                        if (PQstatus(conn) != CONNECTION_OK && quiet_failures) break;
                        ++failures;
                        next += interval;
                        continue;
                    }
                    PQclear(wait);
                }
                const auto acknowledged = Clock::now();
                if (PQresultStatus(r) == PGRES_TUPLES_OK) {
                    std::lock_guard<std::mutex> guard(sent_lock);
                    sent[PQgetvalue(r, 0, 0)] = {w, committed};
                    commit_ms.push_back(ms(acknowledged - asked));
                    acked.push_back(regions[w].name + " " + PQgetvalue(r, 0, 1));
                } else if (PQstatus(conn) != CONNECTION_OK && quiet_failures) {
                    PQclear(r);
                    break;  // the region is gone; what it acknowledged is what counts
                } else {
                    ++failures;
                }
                PQclear(r);
                next += interval;  // a schedule, not a pause: slow commits do not lower the rate
            }
            PQfinish(conn);
        });
    }
    for (auto& t : writers) t.join();
    const auto written = Clock::now();
    const size_t expected = sent.size() * (n - 1);
    const auto drain_until = written + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(vm["drain"].as<double>()));
    auto delivered = [&] {
        std::lock_guard<std::mutex> guard(received_lock);
        size_t count = 0;
        for (const auto& r : received) {
            auto s = sent.find(r.hlc);
            if (s != sent.end() && s->second.origin != r.region) ++count;
        }
        return count;
    };
    while (Clock::now() < drain_until && delivered() < expected)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    listening = false;
    listener.join();

    std::vector<double> latencies;
    std::vector<std::tuple<double, double, size_t, size_t>> slow;  // latency, sent at, from, to
    for (const auto& r : received) {
        auto s = sent.find(r.hlc);
        if (s == sent.end() || s->second.origin == r.region) continue;
        latencies.push_back(ms(r.at - s->second.committed));
        slow.emplace_back(latencies.back(), ms(s->second.committed - start), s->second.origin, r.region);
    }
    std::sort(slow.rbegin(), slow.rend());
    for (int i = 0; i < vm["slowest"].as<int>() && i < static_cast<int>(slow.size()); ++i)
        std::printf("slow: %.1f ms, sent at +%.0f ms, %s -> %s\n", std::get<0>(slow[i]), std::get<1>(slow[i]),
                    regions[std::get<2>(slow[i])].name.c_str(), regions[std::get<3>(slow[i])].name.c_str());
    std::sort(latencies.begin(), latencies.end());
    auto percentile = [&](double p) {
        if (latencies.empty()) return 0.0;
        return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
    };
    if (vm.count("ack-log")) {
        FILE* log = std::fopen(vm["ack-log"].as<std::string>().c_str(), "w");
        for (const auto& line : acked) std::fprintf(log, "%s\n", line.c_str());
        std::fclose(log);
    }
    std::sort(commit_ms.begin(), commit_ms.end());
    const double achieved = sent.size() / seconds;
    std::printf("rate %.0f/s (achieved %.0f/s), %zu messages, %zu of %zu deliveries, %ld failed writes\n", rate,
                achieved, sent.size(), latencies.size(), expected, failures.load());
    std::printf("latency ms: p50 %.1f  p99 %.1f  max %.1f\n", percentile(0.50), percentile(0.99),
                latencies.empty() ? 0.0 : latencies.back());
    if (!commit_ms.empty())
        std::printf("commit ms%s: p50 %.2f  p99 %.2f  max %.2f\n", synchronous ? " (with causal.await_replicated)" : "",
                    commit_ms[commit_ms.size() / 2], commit_ms[std::min(commit_ms.size() - 1, commit_ms.size() * 99 / 100)],
                    commit_ms.back());
    for (PGconn* conn : listeners) PQfinish(conn);
    return latencies.size() == expected && failures == 0 ? 0 : 1;
}
