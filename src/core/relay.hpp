// The relay's decisions, each round: which unheard peers to pull the rows
// of, through which heard peers, and when to ask again about a peer that
// stays unheard. PostgreSQL-free; extension/mesh/relay.cpp reads the mesh,
// asks these, and pulls.
//
// A peer is pulled only when it is unheard (no heartbeat within
// causal.relay_after) and its own stream is silent too: a stream that still
// brings data only lags, and a pull through another peer, under the same
// load, would add to it. A pull that brings nothing new (the peer is dead,
// and every source has told what it had) doubles the wait before the next,
// from relay_after up to kLongestWaitMs; news brings it back to
// relay_after. A region that reaches a source late is still heard within a
// minute.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace causal::relay {

constexpr int64_t kLongestWaitMs = 60 * 1000;

// What a round sees of one peer.
struct PeerView {
    bool heard;           // a heartbeat within relay_after (fencing::heard_within)
    bool stream_silent;   // its subscription here received nothing within relay_after
    bool known;           // this region has a liveness entry for it at all
    bool has_connection;  // this region's subscription to it says how to reach it
};

// What the relay remembers of a peer between rounds.
struct Backoff {
    int64_t next_pull_ms = 0;  // not asked again before this
    int64_t wait_ms = 0;       // the wait after the last pull that brought nothing new
    uint64_t last_news = 0;    // a digest of what that pull brought
};

// Whether this round pulls the rows of `peer`. A heard peer is not pulled,
// and forgets its backoff (reset_if_heard).
constexpr bool due(const PeerView& peer, const Backoff& backoff, int64_t now_ms) {
    return !peer.heard && peer.stream_silent && peer.known && backoff.next_pull_ms <= now_ms;
}

// Whether `peer` can be pulled through: only a peer this region hears, and
// can reach. (An unheard peer is a target, never a source.)
constexpr bool source(const PeerView& peer) { return peer.heard && peer.has_connection; }

inline void reset_if_heard(const PeerView& peer, Backoff& backoff) {
    if (peer.heard) backoff = Backoff{};
}

// After a round that pulled `peer`'s rows: `news` is the digest of what every
// source brought of it. News: ask again as soon as relay_after allows. The
// same again: wait twice as long as last time, within [relay_after,
// kLongestWaitMs]. A pull that stopped at its page budget with rows still to
// read (`unfinished`) goes on in the next round, without waiting: a backlog
// crosses in pulls of kPagesPerPull pages, each committed as it ends.
inline void after_pull(Backoff& backoff, uint64_t news, int64_t now_ms, int64_t relay_after_ms,
                       bool unfinished = false) {
    const int64_t floor = std::max<int64_t>(relay_after_ms, 1);
    const int64_t ceiling = std::max(floor, kLongestWaitMs);
    backoff.wait_ms = news != backoff.last_news || unfinished ? floor : std::clamp(backoff.wait_ms * 2, floor, ceiling);
    backoff.last_news = news;
    backoff.next_pull_ms = unfinished ? now_ms : now_ms + backoff.wait_ms;
}

// Pages of a pull along the stamps before it commits what it stored and
// where it stopped (causal.relay_progress): what a kill can cost, and what
// one transaction here holds.
constexpr int kPagesPerPull = 20;

// One round's plan for `n` peers: for each, whether its rows are pulled (a
// target) and whether others are pulled through it (a source). Heard peers
// forget their backoff. No allocation: the relay worker calls it with
// arrays of its round's memory.
struct Decision {
    bool target = false;
    bool source = false;
};

inline void plan_round(const PeerView* peers, Backoff* backoffs, Decision* decisions, size_t n, int64_t now_ms) {
    for (size_t i = 0; i < n; ++i) {
        reset_if_heard(peers[i], backoffs[i]);
        decisions[i].target = due(peers[i], backoffs[i], now_ms);
        decisions[i].source = source(peers[i]);
    }
}

// Whether the plan has anything to do: a target, and a source to pull it through.
inline bool worth_pulling(const Decision* decisions, size_t n) {
    bool target = false, source = false;
    for (size_t i = 0; i < n; ++i) {
        target = target || decisions[i].target;
        source = source || decisions[i].source;
    }
    return target && source;
}

// Recent first: while a peer's backlog arrives in its stream, the relay
// follows the peer itself (the tail), one query at a time, each for the
// rows it stamped since a point, at most a page. Every answer carries the
// peer's stable point, read after the answer's snapshot: every stamp below
// it has committed there, but maybe after that snapshot, unseen. A row an
// answer could not see committed after its snapshot, so it was stamped at
// or above the stable point the answer before carried (read before that
// snapshot): the next query starts there. A full page goes on where it
// ended instead, and the point it passed over is owed: the first answer
// that is not a full page starts the next query there again. (Starting at
// an answer's own stable point misses rows, and so does paging without the
// debt: the unit test's simulation finds both.)
template <typename Stamp>
struct TailCursor {
    Stamp since;          // where the next query starts
    Stamp stable_before;  // the stable point the last answer carried
    std::optional<Stamp> owed;

    explicit TailCursor(const Stamp& start) : since(start), stable_before(start) {}

    void after_answer(const Stamp& stable, const std::optional<Stamp>& full_page_end) {
        const Stamp floor = owed && *owed < stable_before ? *owed : stable_before;
        if (full_page_end) {
            owed = floor;
            since = *full_page_end;
        } else {
            owed.reset();
            since = floor;
        }
        stable_before = stable;
    }
};

// A peer counts as current once its stream lags less than the window within
// which a region answers readers (fencing::catching_up), which still holds
// seconds of messages: the tail goes on this long after.
constexpr int64_t kTailLingerMs = 10 * 1000;
constexpr bool keep_following(bool behind_now, int64_t behind_last_ms, int64_t now_ms) {
    return behind_now || now_ms - behind_last_ms <= kTailLingerMs;
}

}  // namespace causal::relay
