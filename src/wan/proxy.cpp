#include "proxy.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace causal::wan {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// Bytes queued in one direction before the proxy stops reading: a slow
// link pushes back on its sender instead of growing without bound.
constexpr size_t kMaxQueuedBytes = 8 << 20;

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(asio::io_context& io, Link& link, tcp::socket client)
        : link_(link), client_(std::move(client)), server_(io),
          pipes_{Pipe(io, client_, server_), Pipe(io, server_, client_)} {}

    void start() {
        if (link_.is_cut()) {
            // A partition: the handshake never reaches the other side.
            broken_ = true;
            read(pipes_[0]);
            return;
        }
        auto self = shared_from_this();
        tcp::endpoint target(asio::ip::make_address(link_.config().target_host), link_.config().target_port);
        server_.async_connect(target, [this, self](const error_code& error) {
            if (error) return close();
            server_.set_option(tcp::no_delay(true));
            client_.set_option(tcp::no_delay(true));
            read(pipes_[0]);
            read(pipes_[1]);
        });
    }

    // Everything in flight is lost; what comes later is lost too, until the
    // link heals and closes this connection.
    void cut() {
        broken_ = true;
        for (Pipe& pipe : pipes_) {
            // A chunk being written stays until its write completes:
            // async_write reads it until then.
            const size_t keep = pipe.writing ? 1 : 0;
            while (pipe.queue.size() > keep) {
                link_.dropped(pipe.queue.back().data.size());
                pipe.queued_bytes -= pipe.queue.back().data.size();
                pipe.queue.pop_back();
            }
            pipe.timer.cancel();
        }
    }
    bool broken() const { return broken_; }

    void close() {
        if (closed_) return;
        closed_ = true;
        error_code ignored;
        client_.close(ignored);
        server_.close(ignored);
        for (Pipe& pipe : pipes_) pipe.timer.cancel();
        link_.closed(shared_from_this());
    }

private:
    struct Chunk {
        Clock::time_point departure;
        std::vector<char> data;
    };
    struct Pipe {
        Pipe(asio::io_context& io, tcp::socket& from_socket, tcp::socket& to_socket)
            : from(from_socket), to(to_socket), timer(io) {}
        tcp::socket& from;
        tcp::socket& to;
        std::array<char, 16384> buffer{};
        std::deque<Chunk> queue;
        size_t queued_bytes = 0;
        Clock::time_point last_departure{};
        bool reading = false;
        bool waiting = false;  // a timer wait or a write is in progress
        bool writing = false;  // a write of queue.front() is in progress
        asio::steady_timer timer;
    };

    void read(Pipe& pipe) {
        if (closed_ || pipe.reading) return;
        pipe.reading = true;
        auto self = shared_from_this();
        pipe.from.async_read_some(asio::buffer(pipe.buffer), [this, self, &pipe](const error_code& error, size_t n) {
            pipe.reading = false;
            // A partition carries no FIN or RST: across a cut link the other
            // peer finds out by its own timeout, and heal closes both sides.
            if (error) return broken_ ? void() : close();
            if (broken_ || link_.is_cut()) {
                if (!broken_) cut();
                link_.dropped(n);
            } else {
                pipe.last_departure = link_.departure(pipe.last_departure);
                pipe.queue.push_back(Chunk{pipe.last_departure, std::vector<char>(pipe.buffer.data(), pipe.buffer.data() + n)});
                pipe.queued_bytes += n;
                send(pipe);
            }
            if (pipe.queued_bytes < kMaxQueuedBytes) read(pipe);
        });
    }

    void send(Pipe& pipe) {
        if (closed_ || pipe.waiting || pipe.queue.empty()) return;
        pipe.waiting = true;
        auto self = shared_from_this();
        pipe.timer.expires_at(pipe.queue.front().departure);
        pipe.timer.async_wait([this, self, &pipe](const error_code& error) {
            if (closed_ || error || pipe.queue.empty()) {  // cancelled by a cut or a close
                pipe.waiting = false;
                return;
            }
            pipe.writing = true;
            asio::async_write(pipe.to, asio::buffer(pipe.queue.front().data),
                              [this, self, &pipe](const error_code& error, size_t n) {
                                  pipe.waiting = false;
                                  pipe.writing = false;
                                  if (error) return broken_ ? void() : close();
                                  if (!pipe.queue.empty()) {  // a cut keeps the chunk being written
                                      pipe.queue.pop_front();
                                      pipe.queued_bytes -= n;
                                      link_.forwarded(n);
                                  }
                                  send(pipe);
                                  read(pipe);  // resumes a reader paused by a full queue
                              });
        });
    }

    Link& link_;
    tcp::socket client_;
    tcp::socket server_;
    Pipe pipes_[2];  // client to server, server to client
    bool broken_ = false;
    bool closed_ = false;
};

Link::Link(asio::io_context& io, LinkConfig config)
    : io_(io), config_(std::move(config)), acceptor_(io), random_(std::hash<std::string>{}(config_.name)) {}

void Link::start() {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), config_.listen_port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    accept();
}

void Link::accept() {
    acceptor_.async_accept([this](const error_code& error, tcp::socket socket) {
        if (error) {
            if (error == asio::error::operation_aborted) return;
        } else {
            auto connection = std::make_shared<Connection>(io_, *this, std::move(socket));
            connections_.insert(connection);
            connection->start();
        }
        accept();
    });
}

Clock::time_point Link::departure(Clock::time_point previous) {
    auto delay = config_.delay;
    if (config_.jitter.count() > 0) {
        std::uniform_int_distribution<int64_t> spread(-config_.jitter.count(), config_.jitter.count());
        delay = std::max(std::chrono::milliseconds(0), delay + std::chrono::milliseconds(spread(random_)));
    }
    return std::max(previous, Clock::now() + delay);
}

void Link::cut() {
    cut_ = true;
    for (const auto& connection : connections_) connection->cut();
}

void Link::heal() {
    cut_ = false;
    // Their streams lost bytes: only new connections can be trusted.
    std::vector<std::shared_ptr<Connection>> broken;
    for (const auto& connection : connections_)
        if (connection->broken()) broken.push_back(connection);
    for (const auto& connection : broken) connection->close();
}

void Link::set_delay(std::chrono::milliseconds delay, std::chrono::milliseconds jitter) {
    config_.delay = delay;
    config_.jitter = jitter;
}

void Wan::add(LinkConfig config) {
    std::string name = config.name;
    if (name.empty() || name == "*" || links_.count(name)) throw std::invalid_argument("bad or repeated link name: " + name);
    auto link = std::make_unique<Link>(io_, std::move(config));
    link->start();
    links_.emplace(name, std::move(link));
}

std::string Wan::command(const std::string& line) {
    std::istringstream in(line);
    std::string verb, name;
    in >> verb >> name;
    std::ostringstream out;
    if (verb != "status" && verb != "cut" && verb != "heal" && verb != "delay")
        return "error: unknown command \"" + verb + "\" (status, cut, heal, delay)\n";
    std::vector<Link*> targets;
    if (verb != "status" || !name.empty()) {
        if (name == "*") {
            for (auto& [_, link] : links_) targets.push_back(link.get());
        } else if (auto found = links_.find(name); found != links_.end()) {
            targets.push_back(found->second.get());
        } else {
            return "error: no link named \"" + name + "\"\n";
        }
    } else {
        for (auto& [_, link] : links_) targets.push_back(link.get());
    }
    if (verb == "status") {
        for (Link* link : targets) {
            const LinkConfig& c = link->config();
            out << c.name << " listen=" << c.listen_port << " target=" << c.target_host << ':' << c.target_port
                << " delay_ms=" << c.delay.count() << " jitter_ms=" << c.jitter.count()
                << " state=" << (link->is_cut() ? "cut" : "up") << " connections=" << link->connections()
                << " forwarded=" << link->bytes_forwarded() << " dropped=" << link->bytes_dropped() << '\n';
        }
    } else if (verb == "cut") {
        for (Link* link : targets) link->cut();
    } else if (verb == "heal") {
        for (Link* link : targets) link->heal();
    } else if (verb == "delay") {
        long delay = -1, jitter = 0;
        in >> delay;
        if (!(in >> jitter)) jitter = 0;
        if (delay < 0 || jitter < 0) return "error: usage: delay NAME MS [JITTER_MS]\n";
        for (Link* link : targets) link->set_delay(std::chrono::milliseconds(delay), std::chrono::milliseconds(jitter));
    }
    out << "ok\n";
    return out.str();
}

void Wan::listen_for_control(uint16_t port) {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    control_ = std::make_unique<tcp::acceptor>(io_, endpoint, true);
    accept_control();
}

namespace {

// One control client: commands in, replies out, until it hangs up.
class ControlSession : public std::enable_shared_from_this<ControlSession> {
public:
    ControlSession(tcp::socket socket, Wan& wan) : socket_(std::move(socket)), wan_(wan) {}
    void next() {
        auto self = shared_from_this();
        asio::async_read_until(socket_, input_, '\n', [this, self](const error_code& error, size_t) {
            if (error) return;
            std::istream in(&input_);
            std::string line;
            std::getline(in, line);
            reply_ = wan_.command(line);
            asio::async_write(socket_, asio::buffer(reply_), [this, self](const error_code& error, size_t) {
                if (!error) next();
            });
        });
    }

private:
    tcp::socket socket_;
    Wan& wan_;
    asio::streambuf input_;
    std::string reply_;
};

}  // namespace

void Wan::accept_control() {
    control_->async_accept([this](const error_code& error, tcp::socket socket) {
        if (error == asio::error::operation_aborted) return;
        if (!error) std::make_shared<ControlSession>(std::move(socket), *this)->next();
        accept_control();
    });
}

std::string send_command(uint16_t control_port, const std::string& line) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), control_port));
    asio::write(socket, asio::buffer(line + "\n"));
    asio::streambuf input;
    std::string reply;
    for (;;) {
        asio::read_until(socket, input, '\n');
        std::istream in(&input);
        std::string reply_line;
        std::getline(in, reply_line);
        reply += reply_line + "\n";
        if (reply_line == "ok" || reply_line.rfind("error", 0) == 0) return reply;
    }
}

}  // namespace causal::wan
