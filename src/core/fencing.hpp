// The fencing rules: when a region may be fenced by its peers, and when it
// must fence itself. PostgreSQL-free; the extension applies them to
// causal.regions, its local votes and what the replication streams carry.
//
// The invariant: a majority of the regions stays active. Fences change the
// mesh's configuration (who is active), and a fence is proposed against the
// configuration the operator saw, named by a digest of causal.regions. A
// region votes for it only if it sees that same configuration, the fence
// leaves a majority active in it, and it has not voted for another fence of
// that configuration. A fence lands with the votes of a majority. Two
// majorities share a region, so of two fences proposed against one
// configuration at most one lands; the next must be proposed against the
// configuration after it, where the first counts as fenced. Every landed
// fence was therefore judged with all the earlier ones in view.
//
// (Simpler rules fail. Counting the fences a region has voted for but not
// seen land lets three fences gather three votes each among five regions;
// one pending vote per region fails once landings reach regions late. The
// randomized race in regress/unit/fencing_test.cpp finds both.)
#pragma once

#include <cstddef>
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
    BackingAnother,      // this region voted for another fence of this configuration
    WouldLoseMajority,   // too few would stay active
};

// How `voter` votes on fencing `target`. `regions` is its view, which must
// be the configuration the proposal names (`same_view`); `backed` is the
// target it already voted for in this configuration, if any (voting again
// for the same target is a yes).
Vote vote(const std::vector<RegionView>& regions, const std::string& voter, const std::string& target,
          bool same_view, const std::optional<std::string>& backed);

const char* describe(Vote vote);

// Whether a region that heard recently from `peers_heard` of the other
// regions, out of `regions` in all, is cut off from the majority and must
// stop taking writes.
constexpr bool cut_off(size_t regions, size_t peers_heard) { return peers_heard + 1 < majority(regions); }

}  // namespace causal::fencing
