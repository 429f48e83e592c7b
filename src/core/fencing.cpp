#include "fencing.hpp"

#include <algorithm>

namespace causal::fencing {

Vote vote(const std::vector<RegionView>& regions, const std::string& voter, const std::string& target,
          bool same_view, const std::vector<std::string>& pending) {
    if (voter == target) return Vote::TargetIsVoter;
    auto find = [&](const std::string& name) {
        return std::find_if(regions.begin(), regions.end(), [&](const RegionView& r) { return r.name == name; });
    };
    auto me = find(voter);
    if (me == regions.end() || !me->active) return Vote::VoterNotActive;
    auto it = find(target);
    if (it == regions.end()) return Vote::UnknownTarget;
    if (!it->active) return Vote::AlreadyFenced;
    if (!same_view) return Vote::OtherView;
    for (const std::string& other : pending)
        if (other != target) return Vote::BackingAnother;
    size_t active = 0;
    for (const RegionView& r : regions)
        if (r.active && r.name != target) ++active;
    return active >= majority(regions.size()) ? Vote::Yes : Vote::WouldLoseMajority;
}

const char* describe(Vote vote) {
    switch (vote) {
        case Vote::Yes: return "yes";
        case Vote::TargetIsVoter: return "a region does not vote on its own fence";
        case Vote::VoterNotActive: return "this region is fenced or unregistered, and has no vote";
        case Vote::UnknownTarget: return "no such region in causal.regions";
        case Vote::AlreadyFenced: return "already fenced";
        case Vote::OtherView: return "this region sees another configuration of the mesh than the proposal";
        case Vote::BackingAnother: return "this region voted for another fence that has not landed here yet";
        case Vote::WouldLoseMajority: return "fewer than a majority of regions would stay active";
    }
    return "unknown";
}

}  // namespace causal::fencing
