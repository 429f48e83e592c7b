// The fencing rules: votes keep a majority active, whatever order racing
// operators ask in; a region cut off from the majority fences itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <random>
#include <string>
#include <vector>

#include "fencing.hpp"

namespace {

using causal::fencing::cut_off;
using causal::fencing::majority;
using causal::fencing::RegionView;
using causal::fencing::Vote;
using causal::fencing::vote;

std::vector<RegionView> all_active(int n) {
    std::vector<RegionView> regions;
    for (int i = 0; i < n; ++i) regions.push_back({"r" + std::to_string(i), true});
    return regions;
}

TEST(Fencing, MajorityIsMoreThanHalf) {
    EXPECT_EQ(majority(1), 1u);
    EXPECT_EQ(majority(2), 2u);
    EXPECT_EQ(majority(3), 2u);
    EXPECT_EQ(majority(4), 3u);
    EXPECT_EQ(majority(5), 3u);
}

TEST(Fencing, AVoterSaysWhyNot) {
    auto regions = all_active(3);
    EXPECT_EQ(vote(regions, "r1", "r0", true, {}), Vote::Yes);
    EXPECT_EQ(vote(regions, "r0", "r0", true, {}), Vote::TargetIsVoter);
    EXPECT_EQ(vote(regions, "r1", "nowhere", true, {}), Vote::UnknownTarget);
    EXPECT_EQ(vote(regions, "nowhere", "r0", true, {}), Vote::VoterNotActive);
    EXPECT_EQ(vote(regions, "r1", "r0", false, {}), Vote::OtherView);
    EXPECT_EQ(vote(regions, "r1", "r0", true, {"r0"}), Vote::Yes);  // the same again
    EXPECT_EQ(vote(regions, "r1", "r2", true, {"r0"}), Vote::BackingAnother);
    EXPECT_EQ(vote(regions, "r1", "r2", false, {}), Vote::OtherView);
    regions[0].active = false;
    EXPECT_EQ(vote(regions, "r1", "r0", true, {}), Vote::AlreadyFenced);
    EXPECT_EQ(vote(regions, "r0", "r1", true, {}), Vote::VoterNotActive);
    // r0 fenced already: fencing r1 too would leave one of three
    EXPECT_EQ(vote(regions, "r2", "r1", true, {}), Vote::WouldLoseMajority);
    auto five = all_active(5);
    five[0].active = false;
    EXPECT_EQ(vote(five, "r4", "r1", true, {}), Vote::Yes);  // 3 of 5 stay
}

// Operators race to fence regions. Each proposes against the configuration
// some region showed it; regions answer in any order and learn of landed
// fences late, each at its own time, and a vote stays pending until its
// voter sees its fence land. A fence lands when a majority voted for it.
// Whatever happens, a majority stays active.
TEST(Fencing, RacingOperatorsNeverFenceAMajority) {
    std::mt19937 random(20261126);
    for (int trial = 0; trial < 20000; ++trial) {
        const int n = 3 + static_cast<int>(random() % 5);
        std::vector<std::string> fenced;                   // landed, in order
        std::vector<size_t> seen(n, 0);                    // landings each region knows of
        std::vector<std::vector<std::string>> pending(n);  // per voter
        struct Proposal {
            int target;
            size_t view;  // configuration: the number of landings it includes
            std::set<int> yes;
        };
        std::vector<Proposal> proposals;
        auto view_of = [&](size_t landings) {
            auto regions = all_active(n);
            for (size_t i = 0; i < landings; ++i)
                for (auto& r : regions) r.active = r.active && r.name != fenced[i];
            return regions;
        };
        for (int step = 0; step < 60; ++step) {
            const int action = static_cast<int>(random() % 3);
            if (action == 0 || proposals.empty()) {  // an operator asks some region what it sees
                proposals.push_back({static_cast<int>(random() % n), seen[random() % n], {}});
            } else if (action == 1) {  // a region learns of one more landing, and releases its vote
                const int r = static_cast<int>(random() % n);
                if (seen[r] < fenced.size()) {
                    const std::string landed = fenced[seen[r]++];
                    auto& mine = pending[r];
                    mine.erase(std::remove(mine.begin(), mine.end(), landed), mine.end());
                }
            } else {  // a region answers a proposal
                Proposal& p = proposals[random() % proposals.size()];
                const int voter = static_cast<int>(random() % n);
                const std::string target = "r" + std::to_string(p.target);
                if (vote(view_of(seen[voter]), "r" + std::to_string(voter), target, seen[voter] == p.view,
                         pending[voter]) != Vote::Yes)
                    continue;
                if (std::find(pending[voter].begin(), pending[voter].end(), target) == pending[voter].end())
                    pending[voter].push_back(target);
                p.yes.insert(voter);
                // An operator applies the fence once a majority voted; once only.
                if (p.yes.size() == majority(n) &&
                    std::find(fenced.begin(), fenced.end(), target) == fenced.end())
                    fenced.push_back(target);
            }
        }
        ASSERT_GE(n - static_cast<int>(fenced.size()), static_cast<int>(majority(n)))
            << "trial " << trial << ", " << n << " regions";
    }
}

TEST(Fencing, ARegionCutOffFromTheMajorityFencesItself) {
    EXPECT_FALSE(cut_off(3, 1));  // itself and one peer: 2 of 3
    EXPECT_TRUE(cut_off(3, 0));
    EXPECT_FALSE(cut_off(5, 2));
    EXPECT_TRUE(cut_off(5, 1));
    EXPECT_TRUE(cut_off(4, 1));   // 2 of 4 is not a majority
    EXPECT_FALSE(cut_off(1, 0));  // alone, it is the majority
}

}  // namespace

namespace {

using causal::fencing::effective_timing;
using causal::fencing::timing_warnings;
using causal::fencing::Timing;

struct Checked {
    Timing effective;
    std::vector<std::string> warnings;
};
Checked check_timing(const Timing& t) { return {effective_timing(t), timing_warnings(t)}; }
using causal::fencing::heard_within;

TEST(HeardWithin, NeverHeardIsNeverWithinAnyWindow) {
    EXPECT_FALSE(heard_within(std::nullopt, 1'000'000));
    EXPECT_TRUE(heard_within(0, 0));
    EXPECT_TRUE(heard_within(2000, 2000));
    EXPECT_FALSE(heard_within(2001, 2000));
}

TEST(Timing, TheDefaultsKeepTheOrderAndStayAsTheyAre) {
    const auto check = check_timing({1000, 2000, 0});
    EXPECT_TRUE(check.warnings.empty());
    EXPECT_EQ(check.effective.relay_after_ms, 2000);
    EXPECT_EQ(check.effective.self_fence_after_ms, 0);
    EXPECT_TRUE(check_timing({1000, 2000, 5000}).warnings.empty());
}

TEST(Timing, ARelayNotAboveTheHeartbeatIntervalIsRaisedWithAWarning) {
    const auto check = check_timing({1000, 500, 0});
    ASSERT_EQ(check.warnings.size(), 1u);
    EXPECT_NE(check.warnings[0].find("causal.relay_after (500 ms)"), std::string::npos) << check.warnings[0];
    EXPECT_EQ(check.effective.relay_after_ms, 2000);
}

TEST(Timing, ASelfFenceNotAboveTheRelayIsRaisedAboveIt) {
    const auto check = check_timing({1000, 2000, 1500});
    ASSERT_EQ(check.warnings.size(), 1u);
    EXPECT_NE(check.warnings[0].find("causal.self_fence_after (1500 ms)"), std::string::npos);
    EXPECT_EQ(check.effective.self_fence_after_ms, 3000);
}

TEST(Timing, OffStaysOff) {
    const auto check = check_timing({1000, 0, 0});
    EXPECT_TRUE(check.warnings.empty());
    EXPECT_EQ(check.effective.relay_after_ms, 0);
    EXPECT_EQ(check.effective.self_fence_after_ms, 0);
    // relay off: self_fence_after must only be above the interval
    EXPECT_EQ(check_timing({1000, 0, 800}).effective.self_fence_after_ms, 2000);
}

TEST(Timing, RandomSettingsComeOutOrderedAndUntouchedWhenTheyWere) {
    std::mt19937 random(7);
    for (int i = 0; i < 10000; ++i) {
        const Timing t{100 + static_cast<int64_t>(random() % 5000), static_cast<int64_t>(random() % 3) == 0 ? 0 : static_cast<int64_t>(random() % 10000),
                       static_cast<int64_t>(random() % 3) == 0 ? 0 : static_cast<int64_t>(random() % 20000)};
        const auto check = check_timing(t);
        const Timing& e = check.effective;
        EXPECT_EQ(e.heartbeat_interval_ms, t.heartbeat_interval_ms);
        EXPECT_EQ(e.relay_after_ms == 0, t.relay_after_ms == 0);
        EXPECT_EQ(e.self_fence_after_ms == 0, t.self_fence_after_ms == 0);
        if (e.relay_after_ms > 0) EXPECT_GT(e.relay_after_ms, e.heartbeat_interval_ms);
        if (e.self_fence_after_ms > 0) EXPECT_GT(e.self_fence_after_ms, std::max(e.heartbeat_interval_ms, e.relay_after_ms));
        const bool kept = e.relay_after_ms == t.relay_after_ms && e.self_fence_after_ms == t.self_fence_after_ms;
        EXPECT_EQ(kept, check.warnings.empty());
    }
}

using causal::fencing::catching_up;
using causal::fencing::current_within_ms;
using causal::fencing::kStreamStartGraceMs;
using causal::fencing::PeerProgress;

TEST(CatchingUp, TheWindowIsTheRelaysWaitPlusTheClockOffset) {
    EXPECT_EQ(current_within_ms({1000, 2000, 0}, 500), 2500);
    EXPECT_EQ(current_within_ms({1000, 0, 0}, 500), 2500);  // relay off: two heartbeats
}

TEST(CatchingUp, ALagBehindTheSenderIsABacklogOnlyWhileTheStreamBringsOne) {
    const int64_t window = 2500, long_up = 3'600'000;
    // Current: what the peer sends now is within the window of its newest beat here.
    EXPECT_FALSE(catching_up({true, 2500, 10, 10, long_up}, window));
    EXPECT_FALSE(catching_up({true, 0, 10, 10, 0}, window));
    // A busy stream far behind its sender: the backlog is arriving.
    EXPECT_TRUE(catching_up({true, 2501, 10, 10, long_up}, window));
    EXPECT_TRUE(catching_up({true, 900'000, 2500, std::nullopt, long_up}, window));
    // Keepalives without a new heartbeat: a peer that just restarted sends
    // those before its first new beat; it has nothing this region lacks.
    EXPECT_FALSE(catching_up({true, 900'000, 30'000, 10, long_up}, window));
    // This region just started: keepalives, and no heartbeat has changed
    // since; the peer's walsender is still on its way to the backlog.
    EXPECT_TRUE(catching_up({true, 900'000, std::nullopt, 10, 5'000}, window));
    EXPECT_TRUE(catching_up({true, 900'000, std::nullopt, 10, causal::fencing::kFirstBeatGraceMs}, window));
    EXPECT_FALSE(catching_up({true, 900'000, std::nullopt, 10, causal::fencing::kFirstBeatGraceMs + 1}, window));
    // A silent stream: cut off or dead; waiting would not end.
    EXPECT_FALSE(catching_up({true, 900'000, 2501, 2501, long_up}, window));
    // Nothing received since the start: behind while the stream may still begin.
    EXPECT_TRUE(catching_up({true, std::nullopt, std::nullopt, std::nullopt, kStreamStartGraceMs}, window));
    EXPECT_FALSE(catching_up({true, std::nullopt, std::nullopt, std::nullopt, kStreamStartGraceMs + 1}, window));
    // A peer that never wrote a heartbeat has nothing to be caught up on.
    EXPECT_FALSE(catching_up({false, 900'000, 10, 10, 0}, window));
}

// The lag is on the peer's clock alone: a peer whose clock is minutes off
// ours is current when its stream is, and behind when it is.
TEST(CatchingUp, AClockOffsetChangesNothing) {
    const int64_t window = 2500;
    for (int64_t offset : {-600'000, -3'000, 0, 3'000, 600'000}) {
        const int64_t peer_now = 1'800'000'000'000 + offset;
        const int64_t newest_beat = peer_now - 300;  // a beat 300 ms before what it sends now
        EXPECT_FALSE(catching_up({true, peer_now - newest_beat, 100, 100, 3'600'000}, window)) << offset;
        EXPECT_TRUE(catching_up({true, peer_now - (newest_beat - 60'000), 100, 100, 3'600'000}, window)) << offset;
    }
}

TEST(CatchingUp, RandomViewsAgreeWithTheRuleSpelledOut) {
    std::mt19937 random(11);
    for (int i = 0; i < 10000; ++i) {
        const int64_t window = 1 + static_cast<int64_t>(random() % 5000);
        auto maybe = [&](int64_t bound) {
            return random() % 4 == 0 ? std::nullopt : std::optional<int64_t>(static_cast<int64_t>(random() % bound));
        };
        const PeerProgress p{random() % 5 != 0, maybe(3 * window), maybe(3 * window), maybe(3 * window),
                             static_cast<int64_t>(random() % (2 * kStreamStartGraceMs))};
        const bool busy = (p.heard_ago_ms && *p.heard_ago_ms <= window) ||
                          (!p.heard_ago_ms && p.up_ms <= causal::fencing::kFirstBeatGraceMs);
        const bool behind = p.lag_ms ? *p.lag_ms > window && busy : !p.received_ago_ms && p.up_ms <= kStreamStartGraceMs;
        EXPECT_EQ(catching_up(p, window), p.has_beat && behind);
    }
}

}  // namespace
