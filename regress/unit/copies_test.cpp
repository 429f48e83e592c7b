// The copy rule (src/core/copies.hpp): whatever order copies of one message
// arrive in, every region stores the same row, and keeps every copy's hlc.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "copies.hpp"

namespace {

using causal::Hlc;
using causal::copies::Copies;

Hlc at(uint64_t ms, uint16_t node = 1) { return Hlc::from_parts(static_cast<int64_t>(ms), 0, node); }

// One copy as a region receives it: one hlc, maybe a tombstone. With
// `fences`, a tombstone stamped at an odd millisecond is a fenced region's
// deletion (whether one is depends on its stamp and writer only, as
// merge::fenced_deletion does).
Copies random_copy(std::mt19937_64& random, bool fences = false) {
    Copies c{{at(random() % 8, static_cast<uint16_t>(random() % 3))}, std::nullopt};
    if (random() % 3 == 0) {
        const uint64_t ms = 10 + random() % 8;
        c.deleted_at = at(ms);
        c.deletion_fenced = fences && ms % 2 == 1;
    }
    return c;
}

// A region's stored row: what it holds, and which copy its head stamp and
// body came from, as the trigger would write them.
struct Row {
    Copies held;
    Hlc stamp_source;
    std::optional<Hlc> body_deleted;  // the body's copy: its deleted_at
};

causal::copies::Resolution resolve(const Copies& stored, const Copies& incoming, Copies* result = nullptr) {
    std::vector<Hlc> out(stored.hlcs.size() + incoming.hlcs.size());
    const auto r = causal::copies::resolve(stored.names(), incoming.names(), out.data());
    out.resize(r.count);
    if (result) *result = Copies{out, r.deleted_at, r.deletion_fenced};
    return r;
}

void apply(Row& row, const Copies& incoming) {
    Copies result;
    const auto r = resolve(row.held, incoming, &result);
    if (!r.changes) return;
    if (r.stamp_from_incoming) row.stamp_source = incoming.hlcs[0];
    if (r.body_from_incoming) row.body_deleted = incoming.deleted_at;
    row.held = result;
}

TEST(Copies, CombineIsAssociativeCommutativeAndIdempotent) {
    std::mt19937_64 random(11);
    using causal::copies::combine;
    for (int i = 0; i < 40000; ++i) {
        const bool fences = i % 2 == 1;
        const Copies a = combine(random_copy(random, fences), random_copy(random, fences)),
                     b = random_copy(random, fences), c = random_copy(random, fences);
        EXPECT_EQ(combine(a, b), combine(b, a));
        EXPECT_EQ(combine(combine(a, b), c), combine(a, combine(b, c)));
        EXPECT_EQ(combine(a, a), a);
    }
}

TEST(Copies, EveryCopyIsKeptTheSmallestHeadsTheRowAndDeletionWins) {
    using causal::copies::combine;
    const Copies live_early{{at(1)}, std::nullopt}, live_late{{at(2)}, std::nullopt};
    const Copies deleted_late{{at(2)}, at(20)}, deleted_early{{at(1)}, at(30)};
    EXPECT_EQ(combine(live_late, live_early), (Copies{{at(1), at(2)}, std::nullopt}));
    EXPECT_EQ(combine(live_early, deleted_late), (Copies{{at(1), at(2)}, at(20)}));
    EXPECT_EQ(combine(deleted_late, deleted_early), (Copies{{at(1), at(2)}, at(20)}));
}

// Every region receives the copies in its own order, one at a time, and
// rewrites its row by resolve(): all end with the same row, holding every
// hlc, headed by the smallest, whose body is a tombstone's once any copy was
// one.
TEST(Copies, EveryArrivalOrderStoresTheSameRowWithEveryName) {
    std::mt19937_64 random(12);
    for (int trial = 0; trial < 10000; ++trial) {
        std::vector<Copies> copies(1 + random() % 5);
        for (auto& c : copies) c = random_copy(random, trial % 2 == 1);
        Copies expected = copies[0];
        for (const Copies& c : copies) expected = causal::copies::combine(expected, c);
        std::set<Hlc> names;
        for (const Copies& c : copies) names.insert(c.hlcs.begin(), c.hlcs.end());
        ASSERT_EQ(expected.hlcs, std::vector<Hlc>(names.begin(), names.end()));
        for (int order = 0; order < 6; ++order) {
            std::shuffle(copies.begin(), copies.end(), random);
            Row row{copies[0], copies[0].hlcs[0], copies[0].deleted_at};
            for (const Copies& c : copies) apply(row, c);
            ASSERT_EQ(row.held, expected);
            EXPECT_EQ(row.stamp_source, expected.hlcs[0]);
            EXPECT_EQ(row.body_deleted.has_value(), expected.deleted_at.has_value())
                << "a deleted message keeps a tombstone's (erased) body";
            // ... the one whose deletion it keeps, so that the row names the
            // region that deleted it then (written_by is a body column).
            if (expected.deleted_at) EXPECT_EQ(row.body_deleted, expected.deleted_at);
            // A copy that changes nothing is a duplicate: relay loops end.
            for (const Copies& c : copies) EXPECT_FALSE(resolve(row.held, c).changes);
            EXPECT_FALSE(resolve(row.held, row.held).changes);
        }
    }
}

// A fenced region's deletion deletes nothing: the message stays with its
// body, takes it back where the tombstone erased it, and a deletion by an
// active region still deletes it, before or after.
TEST(Copies, AFencedDeletionDeletesNothingAndAnActiveOneStillDoes) {
    using causal::copies::combine;
    const Copies live{{at(1)}, std::nullopt};
    const Copies fenced{{at(1)}, at(21), true}, active{{at(1)}, at(30)};
    // Arriving over the live copy: the body stays, nothing to rewrite.
    Copies row;
    EXPECT_FALSE(resolve(live, fenced, &row).changes);
    EXPECT_EQ(row, live);
    // Where the tombstone erased the body (the deleting region, or one the
    // fence reached later), the live copy brings it back.
    const auto back = resolve(fenced, live, &row);
    EXPECT_TRUE(back.changes);
    EXPECT_TRUE(back.body_from_incoming);
    EXPECT_EQ(row, live);
    // Two fenced tombstones: the earlier one waits for a body.
    EXPECT_EQ(combine(fenced, Copies{{at(1)}, at(23), true}), fenced);
    // An active region's deletion wins, whichever came first, with its
    // tombstone's body.
    for (const Copies& first : {live, fenced}) {
        const auto r = resolve(combine(first, fenced), active, &row);
        EXPECT_TRUE(r.changes);
        EXPECT_TRUE(r.body_from_incoming);
        EXPECT_EQ(row, (Copies{{at(1)}, at(30)}));
    }
    EXPECT_FALSE(resolve(active, fenced).changes) << "a fenced deletion after an active one changes nothing";
    // An earlier fenced deletion does not move an active one's time.
    EXPECT_EQ(combine(active, Copies{{at(1)}, at(11), true}), active);
}

TEST(Copies, TheFirstCopyNoFenceMakesAnOrphanIsPresented) {
    const std::vector<int> copies = {10, 20, 30};  // in stamp order
    auto fenced = [](std::set<int> set) { return [set](int c) { return set.count(c) > 0; }; };
    using causal::copies::presented_copy;
    EXPECT_EQ(*presented_copy(copies.begin(), copies.end(), fenced({})), 10);
    EXPECT_EQ(*presented_copy(copies.begin(), copies.end(), fenced({10})), 20);
    EXPECT_EQ(*presented_copy(copies.begin(), copies.end(), fenced({10, 20})), 30);
    EXPECT_EQ(*presented_copy(copies.begin(), copies.end(), fenced({10, 20, 30})), 10) << "all fenced: the smallest";
}

}  // namespace
