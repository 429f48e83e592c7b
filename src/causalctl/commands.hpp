// causalctl's commands. Each prints its result on `out`, as plain text for
// people or one JSON document with --json, its errors and refusals on `err`
// (in JSON mode they are part of the document), and returns an exit code.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "mesh.hpp"
#include "pg.hpp"

namespace causalctl {

// Documented in `causalctl --help` and docs/operations.md.
enum Exit : int {
    kOk = 0,           // done; converged; every link streaming
    kAttention = 1,    // verify: regions differ; status: a warning; init: links wait for tables;
                       // rejoin: not active everywhere yet; reseed: links new, not rejoined yet
    kUsage = 2,        // bad command line or configuration
    kUnreachable = 3,  // a region could not be reached or a statement failed
    kRefused = 4,      // the command would be unsafe and changed nothing
};

struct Options {
    bool json = false;
    SessionLimits session;  // --connect-timeout, --lock-timeout, --idle-timeout
    std::optional<std::string> conversation;  // verify
    // How long to wait, when given: verify retries until converged (default:
    // look once), failover waits for the region to count as dead (default:
    // not at all), rejoin for the links to catch up (default 60 s).
    std::optional<double> wait_s;
    long long max_slot_wal_mb = 1024;         // status: warn above
    std::string target;                       // failover, rejoin, remove, reseed: the region; ddl: the statement
    bool force = false;                       // failover: fence a region its peers still hear; remove: lose what it holds
    double dead_after_s = 3;                  // failover: heard within this = alive
    // init: the subscriptions' synchronous_commit. local: each applied
    // transaction is flushed and acknowledged at once, so
    // causal.await_replicated() returns in about a round trip; off: the WAL
    // writer flushes in batches, which carries more messages per second, and
    // an acknowledgement waits for the apply worker's next report.
    std::string apply_commit = "local";
    // init: whether a new link copies what its publisher holds (copy_data).
    // reseed makes its links without a copy, and has the relays pull what
    // each side lacks instead.
    bool copy_new_links = true;
};

int init(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int status(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int verify(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int failover(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int rejoin(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int ddl(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int remove(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);
int reseed(const Mesh& mesh, const Options& options, std::ostream& out, std::ostream& err);

}  // namespace causalctl
