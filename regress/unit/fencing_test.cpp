// The fencing rules: votes keep a majority active, whatever order racing
// operators ask in; a region cut off from the majority fences itself.
#include <gtest/gtest.h>

#include <algorithm>
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
    EXPECT_EQ(vote(regions, "r1", "r0", {}), Vote::Yes);
    EXPECT_EQ(vote(regions, "r0", "r0", {}), Vote::TargetIsVoter);
    EXPECT_EQ(vote(regions, "r1", "nowhere", {}), Vote::UnknownTarget);
    EXPECT_EQ(vote(regions, "nowhere", "r0", {}), Vote::VoterNotActive);
    regions[0].active = false;
    EXPECT_EQ(vote(regions, "r1", "r0", {}), Vote::AlreadyFenced);
    EXPECT_EQ(vote(regions, "r0", "r1", {}), Vote::VoterNotActive);
    // r0 fenced already: fencing r1 too would leave one of three
    EXPECT_EQ(vote(regions, "r2", "r1", {}), Vote::WouldLoseMajority);
}

TEST(Fencing, ARegionBacksOneFenceAtATime) {
    auto regions = all_active(5);
    EXPECT_EQ(vote(regions, "r4", "r0", {"r0"}), Vote::Yes);  // the same again
    EXPECT_EQ(vote(regions, "r4", "r1", {"r0"}), Vote::BackingAnother);
    regions[0].active = false;  // r0's fence landed
    EXPECT_EQ(vote(regions, "r4", "r1", {}), Vote::Yes);  // 3 of 5 stay
    regions[1].active = false;
    EXPECT_EQ(vote(regions, "r4", "r2", {}), Vote::WouldLoseMajority);
}

// Operators race to fence regions; every region answers the requests in
// some order, and a fence lands (every region sees it) once a majority
// voted for it. Whatever the order, a majority stays active. With several
// pending votes per region allowed, this finds three fences landing among
// five regions.
TEST(Fencing, RacingOperatorsNeverFenceAMajority) {
    std::mt19937 random(20261126);
    for (int trial = 0; trial < 5000; ++trial) {
        const int n = 3 + static_cast<int>(random() % 5);
        auto regions = all_active(n);
        std::vector<std::vector<std::string>> backed(n);  // per voter, pending targets
        std::vector<std::pair<int, int>> requests;        // (target, voter)
        const int targets = 1 + static_cast<int>(random() % n);
        for (int t = 0; t < targets; ++t) {
            const int target = static_cast<int>(random() % n);
            for (int v = 0; v < n; ++v) requests.emplace_back(target, v);
        }
        std::shuffle(requests.begin(), requests.end(), random);
        std::vector<int> yes(n, 0);
        for (auto [target, voter] : requests) {
            const std::string name = "r" + std::to_string(target);
            auto& mine = backed[voter];
            if (std::find(mine.begin(), mine.end(), name) != mine.end()) continue;
            if (vote(regions, "r" + std::to_string(voter), name, mine) != Vote::Yes) continue;
            mine.push_back(name);
            if (++yes[target] == static_cast<int>(majority(n))) {
                regions[target].active = false;  // lands; voters see it and release their votes
                for (auto& b : backed) b.erase(std::remove(b.begin(), b.end(), name), b.end());
            }
        }
        int active = 0;
        for (const auto& r : regions) active += r.active;
        ASSERT_GE(active, static_cast<int>(majority(n))) << "trial " << trial << ", " << n << " regions";
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
