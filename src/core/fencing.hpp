// The fencing rules: when a region may be fenced by its peers, and when it
// must fence itself. PostgreSQL-free; the extension applies them to
// causal.regions, its local votes and what the replication streams carry.
//
// The invariant: a majority of the regions stays active. Fences change the
// mesh's configuration (who is active, in which epoch), and a fence is
// proposed against the configuration the operator saw, named by a digest of
// causal.regions. A region votes for it only if it sees that same
// configuration, the fence leaves a majority of it active, and no other
// fence it voted for is still pending: a vote stays pending until the
// voter sees its target fenced, however long that takes, and whatever else
// changes meanwhile (a region joining, another rejoining). The fence is
// applied only where the configuration is still the voted one. A fence
// lands with the votes of a majority of causal.regions.
//
// Why that holds: a fence Z that lands shares a voter u with every fence F
// that landed before it (two majorities intersect). u either still had F
// pending, and refused Z, or had seen F land, so the configuration Z was
// proposed against, which every voter of Z saw, counts F as fenced. Z was
// therefore judged with every earlier fence in view.
//
// (Simpler rules fail: counting several pending fences per region lets
// three fences gather three votes each among five regions; letting votes
// lapse, or end with a change of configuration, lets a late-landing fence
// meet a second one. The randomized race in regress/unit/fencing_test.cpp
// finds the first; review found the second.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace causal::fencing {

constexpr size_t majority(size_t regions) { return regions / 2 + 1; }

struct RegionView {
    std::string name;
    bool active;  // not fenced (an unregistered region is not in the list)
};

enum class Vote {
    Yes,
    TargetIsVoter,       // a region does not vote on itself
    VoterNotActive,      // a fenced region has no say
    UnknownTarget,       // not in causal.regions
    AlreadyFenced,       // nothing to do: the fence is in place
    OtherView,           // the proposal was made against another configuration
    BackingAnother,      // this region's vote for another fence is still pending
    WouldLoseMajority,   // too few would stay active
};

// How `voter` votes on fencing `target`. `regions` is its view, which must
// be the configuration the proposal names (`same_view`); `pending` are the
// targets of its votes whose fences it has not seen land (voting again for
// a pending target is a yes).
Vote vote(const std::vector<RegionView>& regions, const std::string& voter, const std::string& target,
          bool same_view, const std::vector<std::string>& pending);

const char* describe(Vote vote);

// Whether a region that heard recently from `peers_heard` of the other
// regions, out of `regions` in all, is cut off from the majority and must
// stop taking writes.
constexpr bool cut_off(size_t regions, size_t peers_heard) { return peers_heard + 1 < majority(regions); }

// Whether a peer counts as heard within `window_ms`: its last heartbeat
// arrived at most that long ago (`heard_ago_ms`; none: never, since this
// server started). The one rule behind the self-fence
// (causal.self_fence_after), the relay (causal.relay_after) and causalctl
// failover (--dead-after).
constexpr bool heard_within(std::optional<int64_t> heard_ago_ms, int64_t window_ms) {
    return heard_ago_ms.has_value() && *heard_ago_ms <= window_ms;
}

// The liveness settings must keep an order: a peer looks unheard between
// two of its heartbeats if a window is shorter than the interval, and a
// region must try to hear a silent peer through the others (the relay)
// before it fences itself. A check hook sees one setting at a time, and a
// configuration that starts today must still start; so the workers check
// the three together where they use them, and use the effective values.
struct Timing {
    int64_t heartbeat_interval_ms;
    int64_t relay_after_ms;       // 0: relay off
    int64_t self_fence_after_ms;  // 0: self-fencing off
};
// relay_after above heartbeat_interval (else twice the interval);
// self_fence_after above the longer of heartbeat_interval and the
// effective relay_after, by one interval (else that). Off stays off.
constexpr Timing effective_timing(Timing t) {
    if (t.relay_after_ms > 0 && t.relay_after_ms <= t.heartbeat_interval_ms) t.relay_after_ms = 2 * t.heartbeat_interval_ms;
    const int64_t floor = t.heartbeat_interval_ms > t.relay_after_ms ? t.heartbeat_interval_ms : t.relay_after_ms;
    if (t.self_fence_after_ms > 0 && t.self_fence_after_ms <= floor) t.self_fence_after_ms = floor + t.heartbeat_interval_ms;
    return t;
}
// One warning per setting effective_timing() raised, naming the order it broke.
std::vector<std::string> timing_warnings(const Timing& configured);

// How far behind a peer's stream this region may be and still count as
// current with it: the relay's wait (or two heartbeats with the relay off),
// plus the clock offset (the lag is measured on the peer's clock alone, but
// a heartbeat's beat is the later of its clock and the last beat plus 1).
constexpr int64_t current_within_ms(const Timing& t, int64_t max_clock_offset_ms) {
    return (t.relay_after_ms > 0 ? t.relay_after_ms : 2 * t.heartbeat_interval_ms) + max_clock_offset_ms;
}

// How long a started server waits for a peer's stream to bring anything
// before it takes the peer's silence for a cut link rather than a backlog
// not yet begun: the launcher's start of the apply worker, its connection,
// and the walsender's first decoded change.
constexpr int64_t kStreamStartGraceMs = 10'000;
// How long after a start a stream that sends (keepalives) but has brought no
// new heartbeat yet still counts as bringing a backlog: its walsender may
// decode a while before the first commit of the backlog is sent.
constexpr int64_t kFirstBeatGraceMs = 60'000;

// What this region knows of one peer's stream.
struct PeerProgress {
    bool has_beat;  // a heartbeat of the peer's is here (else nothing of it to wait for)
    // The peer's own clock, both: when it last sent something on the stream,
    // minus its newest heartbeat applied here. How far behind the stream's
    // sender this region is, whatever the two clocks' offset. None: nothing
    // received since this server started.
    std::optional<int64_t> lag_ms;
    std::optional<int64_t> heard_ago_ms;     // since the peer's heartbeat last changed here
    std::optional<int64_t> received_ago_ms;  // since the stream last brought anything, keepalives too (this clock)
    int64_t up_ms;                           // since this server started
};

// Whether this region is still catching up on a peer's messages: what the
// peer sends now is more than `window_ms` ahead of the newest heartbeat of
// its applied here, while the stream is bringing its heartbeats (one
// changed within the window: a keepalive alone says nothing, and a peer
// that just restarted sends those before its first new heartbeat; but a
// region that just started has heard no heartbeat change yet while its
// peers' walsenders decode their way to the backlog); or, just started,
// nothing has come yet. What it holds then
// has gaps a client must not see: the rows the peer wrote after that
// heartbeat are on their way, behind it. A peer whose stream is silent is
// cut off or dead: waiting would not end, and a reader is answered without
// it (the relay brings what other regions hold).
constexpr bool catching_up(const PeerProgress& peer, int64_t window_ms) {
    if (!peer.has_beat) return false;
    if (!peer.lag_ms.has_value()) return !peer.received_ago_ms.has_value() && peer.up_ms <= kStreamStartGraceMs;
    const bool bringing = heard_within(peer.heard_ago_ms, window_ms) ||
                          (!peer.heard_ago_ms.has_value() && peer.up_ms <= kFirstBeatGraceMs);
    return *peer.lag_ms > window_ms && bringing;
}

}  // namespace causal::fencing
