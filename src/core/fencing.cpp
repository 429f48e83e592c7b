#include "fencing.hpp"

#include <algorithm>
#include <string>

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

std::vector<std::string> timing_warnings(const Timing& configured) {
    const Timing t = effective_timing(configured);
    const auto ms = [](int64_t value) { return std::to_string(value) + " ms"; };
    std::vector<std::string> warnings;
    if (t.relay_after_ms != configured.relay_after_ms)
        warnings.push_back("causal.relay_after (" + ms(configured.relay_after_ms) +
                           ") is not above causal.heartbeat_interval (" + ms(t.heartbeat_interval_ms) +
                           "): a peer would look unheard between two heartbeats; using " + ms(t.relay_after_ms));
    if (t.self_fence_after_ms != configured.self_fence_after_ms)
        warnings.push_back("causal.self_fence_after (" + ms(configured.self_fence_after_ms) + ") is not above " +
                           (t.relay_after_ms > t.heartbeat_interval_ms
                                ? "causal.relay_after (" + ms(t.relay_after_ms) + ")"
                                : "causal.heartbeat_interval (" + ms(t.heartbeat_interval_ms) + ")") +
                           ": the region would fence itself before it tried to hear its peers through the "
                           "others; using " + ms(t.self_fence_after_ms));
    return warnings;
}

}  // namespace causal::fencing
