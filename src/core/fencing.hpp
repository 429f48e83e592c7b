// The fencing rules: when a region may be fenced by its peers, and when it
// must fence itself. PostgreSQL-free; the extension applies them to
// causal.regions, its local votes and what the replication streams carry.
//
// The invariant both keep: a majority of the regions stays active. A fence
// needs the votes of a majority, and a region backs one fence at a time:
// until the fence it voted for has landed in its causal.regions (or the
// vote has expired), it refuses every other. Two majorities share a region,
// so of two racing fences at most one gathers its votes; the next is judged
// against the first, landed. A region votes only for a fence that leaves a
// majority active in its view.
//
// (Backing several pending fences, each leaving a majority in the voter's
// own count, is not enough: with five regions, three fences can each gather
// three votes without any region backing all three. The unit test that
// races operators found it.)
#pragma once

#include <cstddef>
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
    BackingAnother,      // this voter's vote for another fence has not landed or expired yet
    WouldLoseMajority,   // too few would stay active
};

// How `voter` votes on fencing `target`, given what it sees in
// causal.regions and the targets of its votes still pending (cast, not yet
// landed, not expired). Voting again for a pending target is a yes.
Vote vote(const std::vector<RegionView>& regions, const std::string& voter, const std::string& target,
          const std::vector<std::string>& pending);

const char* describe(Vote vote);

// Whether a region that heard recently from `peers_heard` of the other
// regions, out of `regions` in all, is cut off from the majority and must
// stop taking writes.
constexpr bool cut_off(size_t regions, size_t peers_heard) { return peers_heard + 1 < majority(regions); }

}  // namespace causal::fencing
