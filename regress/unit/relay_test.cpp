// The relay's round decisions (src/core/relay.hpp): who is pulled, through
// whom, and how often a peer that stays unheard is asked again.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>
#include <set>

#include "relay.hpp"

using namespace causal::relay;

namespace {

PeerView unheard_silent() { return PeerView{false, true, true, true}; }

TEST(Relay, OnlyAnUnheardPeerWithASilentStreamIsPulled) {
    const Backoff fresh;
    EXPECT_TRUE(due(unheard_silent(), fresh, 0));
    PeerView heard = unheard_silent();
    heard.heard = true;
    EXPECT_FALSE(due(heard, fresh, 0)) << "a heard peer needs no relay";
    PeerView lagging = unheard_silent();
    lagging.stream_silent = false;
    EXPECT_FALSE(due(lagging, fresh, 0)) << "a stream that brings data lags: a pull would add load";
    PeerView unknown = unheard_silent();
    unknown.known = false;
    EXPECT_FALSE(due(unknown, fresh, 0)) << "a peer liveness has no entry for yet";
    Backoff waiting;
    waiting.next_pull_ms = 10;
    EXPECT_FALSE(due(unheard_silent(), waiting, 9));
    EXPECT_TRUE(due(unheard_silent(), waiting, 10));
}

TEST(Relay, SourcesAreHeardAndReachable) {
    EXPECT_FALSE(source(unheard_silent()));
    EXPECT_TRUE(source(PeerView{true, false, true, true}));
    EXPECT_FALSE(source(PeerView{true, false, true, false})) << "no subscription to it: no way to reach it";
}

TEST(Relay, HearingAPeerForgetsItsBackoff) {
    Backoff b{5000, 4000, 7};
    reset_if_heard(unheard_silent(), b);
    EXPECT_EQ(b.wait_ms, 4000);
    reset_if_heard(PeerView{true, true, true, true}, b);
    EXPECT_EQ(b.wait_ms, 0);
    EXPECT_EQ(b.next_pull_ms, 0);
    EXPECT_EQ(b.last_news, 0u);
}

// Randomized: whatever the pulls bring, the wait stays within [relay_after,
// a minute], news brings it back to relay_after, the same again doubles it
// (up to the minute), and the next pull is that wait away.
TEST(Relay, BackoffStaysWithinItsBoundsAndFollowsTheNews) {
    std::mt19937_64 random(20261207);
    for (int run = 0; run < 200; ++run) {
        const int64_t relay_after = std::uniform_int_distribution<int64_t>(1, 90000)(random);
        Backoff b;
        int64_t now = 0;
        uint64_t news = 0;
        for (int round = 0; round < 100; ++round) {
            now += std::uniform_int_distribution<int64_t>(0, 5000)(random);
            const bool changed = std::bernoulli_distribution(0.3)(random);
            if (changed) ++news;
            const Backoff before = b;
            after_pull(b, news, now, relay_after);
            const int64_t ceiling = std::max(relay_after, kLongestWaitMs);
            ASSERT_GE(b.wait_ms, relay_after);
            ASSERT_LE(b.wait_ms, ceiling);
            ASSERT_EQ(b.next_pull_ms, now + b.wait_ms);
            ASSERT_EQ(b.last_news, news);
            if (news != before.last_news)
                ASSERT_EQ(b.wait_ms, relay_after) << "news: ask again soon";
            else
                ASSERT_EQ(b.wait_ms, std::clamp(before.wait_ms * 2, relay_after, ceiling)) << "the same again: wait twice as long";
        }
    }
}

// A dead peer (every pull brings the same): rounds every 250 ms for an hour
// ask about it no more than the doubling steps plus once a minute.
TEST(Relay, ADeadPeerIsAskedAboutRarely) {
    for (const int64_t relay_after : {500, 2000, 10000}) {
        const PeerView peers[2] = {unheard_silent(), PeerView{true, false, true, true}};
        Backoff backoffs[2];
        Decision decisions[2];
        int pulls = 0;
        constexpr int64_t kHour = 3600 * 1000;
        for (int64_t now = 0; now < kHour; now += 250) {
            plan_round(peers, backoffs, decisions, 2, now);
            ASSERT_FALSE(decisions[0].source) << "an unheard peer is never a source";
            ASSERT_TRUE(decisions[1].source);
            ASSERT_FALSE(decisions[1].target) << "a heard peer is never a target";
            if (!decisions[0].target) continue;
            ASSERT_TRUE(worth_pulling(decisions, 2));
            ++pulls;
            after_pull(backoffs[0], 42, now, relay_after);
        }
        const int doubling = static_cast<int>(std::ceil(std::log2(static_cast<double>(kLongestWaitMs) / relay_after))) + 1;
        EXPECT_LE(pulls, doubling + kHour / kLongestWaitMs + 1) << "relay_after " << relay_after;
        EXPECT_GE(pulls, kHour / kLongestWaitMs) << "it is still asked about once a minute";
    }
}

// Randomized views: the plan is due() and source() peer by peer, heard
// peers lose their backoff, and it is worth a round exactly when it has a
// target and a source.
TEST(Relay, APlanIsThePeersDecisions) {
    std::mt19937_64 random(7);
    for (int run = 0; run < 2000; ++run) {
        const size_t n = std::uniform_int_distribution<size_t>(0, 6)(random);
        PeerView peers[6];
        Backoff backoffs[6], before[6];
        Decision decisions[6];
        const int64_t now = std::uniform_int_distribution<int64_t>(0, 10000)(random);
        std::bernoulli_distribution coin(0.5);
        for (size_t i = 0; i < n; ++i) {
            peers[i] = PeerView{coin(random), coin(random), coin(random), coin(random)};
            backoffs[i] = before[i] = Backoff{std::uniform_int_distribution<int64_t>(0, 20000)(random), 4000, 3};
        }
        plan_round(peers, backoffs, decisions, n, now);
        bool any_target = false, any_source = false;
        for (size_t i = 0; i < n; ++i) {
            ASSERT_EQ(decisions[i].target, due(peers[i], before[i], now));
            ASSERT_EQ(decisions[i].source, source(peers[i]));
            ASSERT_FALSE(decisions[i].target && decisions[i].source) << "a peer is pulled, or pulled through, not both";
            ASSERT_EQ(backoffs[i].wait_ms, peers[i].heard ? 0 : 4000);
            any_target = any_target || decisions[i].target;
            any_source = any_source || decisions[i].source;
        }
        ASSERT_EQ(worth_pulling(decisions, n), any_target && any_source);
    }
}

// A pull cut short by its page budget goes on at once, whatever the news,
// and leaves the wait where news would.
TEST(Relay, AnUnfinishedPullGoesOnInTheNextRound) {
    std::mt19937_64 random(13);
    for (int i = 0; i < 10000; ++i) {
        Backoff b{static_cast<int64_t>(random() % 100000), static_cast<int64_t>(random() % 60000), random() % 3};
        const int64_t now = 1'000'000 + static_cast<int64_t>(random() % 1000);
        const int64_t relay_after = 1 + static_cast<int64_t>(random() % 5000);
        const uint64_t news = random() % 3;
        after_pull(b, news, now, relay_after, true);
        ASSERT_EQ(b.next_pull_ms, now);
        ASSERT_EQ(b.wait_ms, relay_after);
        ASSERT_EQ(b.last_news, news);
    }
}

// The tail's cursor against a simulated peer: transactions take stamps from
// one clock and commit in any order; a query's snapshot sees what committed
// before it; the stable point it carries is read after that snapshot
// (anything may commit in between). Whatever the interleaving, every row
// is in some answer, page limits included; starting at an answer's own
// stable point instead misses rows.
struct TailPeer {
    std::mt19937_64 random;
    uint64_t clock = 0;
    std::set<uint64_t> unfinished, committed;

    void begin() { unfinished.insert(++clock); }
    void commit_one() {
        if (unfinished.empty()) return;
        auto it = unfinished.begin();
        std::advance(it, static_cast<long>(random() % unfinished.size()));
        committed.insert(*it);
        unfinished.erase(it);
    }
    void step() { random() % 2 ? begin() : commit_one(); }
    uint64_t stable() { return unfinished.empty() ? ++clock : *unfinished.begin(); }
};

enum class TailRule { Cursor, FromOwnStable, PagingWithoutDebt };

size_t tail_misses(uint64_t seed, TailRule rule) {
    TailPeer peer{std::mt19937_64(seed)};
    constexpr size_t kPage = 3;
    causal::relay::TailCursor<uint64_t> cursor(0);
    std::set<uint64_t> seen;
    bool writing = true;
    auto poll = [&] {
        const std::set<uint64_t> snapshot = peer.committed;
        for (int k = writing ? static_cast<int>(peer.random() % 3) : 0; k > 0; --k) peer.step();  // between snapshot and stable
        const uint64_t stable = peer.stable();
        std::optional<uint64_t> page_end;
        size_t rows = 0;
        for (auto it = snapshot.lower_bound(cursor.since); it != snapshot.end() && rows < kPage; ++it, ++rows) {
            seen.insert(*it);
            if (rows + 1 == kPage) page_end = *it;
        }
        const uint64_t before = cursor.stable_before;
        cursor.after_answer(stable, page_end);
        if (rule == TailRule::FromOwnStable && !page_end) cursor.since = stable;
        if (rule == TailRule::PagingWithoutDebt && !page_end) cursor.since = before;
    };
    for (int i = 0; i < 300; ++i) {
        for (int k = static_cast<int>(peer.random() % 4); k > 0; --k) peer.step();
        poll();
    }
    // The writers stop, every transaction ends: the tail reads on.
    writing = false;
    while (!peer.unfinished.empty()) peer.commit_one();
    for (int i = 0; i < 400; ++i) poll();
    size_t missed = 0;
    for (uint64_t row : peer.committed) missed += seen.count(row) == 0;
    return missed;
}

TEST(Relay, TheTailMissesNoRowWhateverTheCommitOrder) {
    size_t from_own_stable = 0, without_debt = 0;
    for (uint64_t seed = 1; seed <= 150; ++seed) {
        ASSERT_EQ(tail_misses(seed, TailRule::Cursor), 0u) << "seed " << seed;
        from_own_stable += tail_misses(seed, TailRule::FromOwnStable);
        without_debt += tail_misses(seed, TailRule::PagingWithoutDebt);
    }
    EXPECT_GT(from_own_stable, 0u) << "starting at the answer's own stable point misses rows";
    EXPECT_GT(without_debt, 0u) << "paging on without coming back misses rows";
}

TEST(Relay, TheTailGoesOnAWhileAfterTheBacklog) {
    using causal::relay::keep_following;
    using causal::relay::kTailLingerMs;
    EXPECT_TRUE(keep_following(true, 0, 1'000'000));
    EXPECT_TRUE(keep_following(false, 1000, 1000 + kTailLingerMs));
    EXPECT_FALSE(keep_following(false, 1000, 1001 + kTailLingerMs));
}

}  // namespace
