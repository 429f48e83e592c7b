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

}  // namespace causal::fencing
