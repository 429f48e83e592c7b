// A user-space WAN for tests on one machine: TCP links that deliver bytes
// after a one-way delay with jitter, and that can be cut and healed.
//
// `tc netem` needs privileges these machines do not give; this proxy sits
// between a subscriber and its publisher instead. Bytes keep their order
// (jitter never reorders a TCP stream: a chunk leaves no earlier than the one
// before it). A cut link behaves like a partition, not like a refusal: its
// connections stay open and everything sent into them is lost, so the peers
// find out by their own timeouts, as they would across a real WAN. Healing
// closes the connections the cut broke (their streams have holes) and the
// peers reconnect.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>

namespace causal::wan {

using Clock = std::chrono::steady_clock;

struct LinkConfig {
    std::string name;
    uint16_t listen_port = 0;
    std::string target_host = "127.0.0.1";
    uint16_t target_port = 0;
    std::chrono::milliseconds delay{0};
    std::chrono::milliseconds jitter{0};
};

class Connection;

class Link {
public:
    Link(boost::asio::io_context& io, LinkConfig config);
    void start();

    void cut();
    void heal();
    void set_delay(std::chrono::milliseconds delay, std::chrono::milliseconds jitter);
    bool is_cut() const { return cut_; }
    const LinkConfig& config() const { return config_; }
    size_t connections() const { return connections_.size(); }
    uint64_t bytes_forwarded() const { return bytes_forwarded_; }
    uint64_t bytes_dropped() const { return bytes_dropped_; }

    // For connections: when a chunk read now leaves, after the one before it.
    Clock::time_point departure(Clock::time_point previous);
    void forwarded(size_t bytes) { bytes_forwarded_ += bytes; }
    void dropped(size_t bytes) { bytes_dropped_ += bytes; }
    void closed(const std::shared_ptr<Connection>& connection) { connections_.erase(connection); }

private:
    void accept();

    boost::asio::io_context& io_;
    LinkConfig config_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::set<std::shared_ptr<Connection>> connections_;
    bool cut_ = false;
    uint64_t bytes_forwarded_ = 0;
    uint64_t bytes_dropped_ = 0;
    std::mt19937_64 random_;
};

// Links by name, and the line protocol that steers them:
//   status | cut NAME | heal NAME | delay NAME MS [JITTER_MS]   (NAME may be *)
class Wan {
public:
    explicit Wan(boost::asio::io_context& io) : io_(io) {}
    void add(LinkConfig config);
    void listen_for_control(uint16_t port);
    // One command line in, one reply out (ends with a newline; "ok" or
    // "error: ..." on its last line).
    std::string command(const std::string& line);

private:
    void accept_control();

    boost::asio::io_context& io_;
    std::map<std::string, std::unique_ptr<Link>> links_;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> control_;
};

// Sends one command to a running proxy and returns its reply.
std::string send_command(uint16_t control_port, const std::string& line);

}  // namespace causal::wan
