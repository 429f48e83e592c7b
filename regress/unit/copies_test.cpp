// The copy rule (src/core/copies.hpp): whatever order copies of one message
// arrive in, every region stores the same row.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "copies.hpp"

namespace {

using causal::Hlc;
using causal::copies::Copy;

Hlc at(uint64_t ms, uint16_t node = 1) { return Hlc::from_parts(static_cast<int64_t>(ms), 0, node); }

Copy random_copy(std::mt19937_64& random) {
    Copy c{at(random() % 8, static_cast<uint16_t>(random() % 3)), std::nullopt};
    if (random() % 3 == 0) c.deleted_at = at(10 + random() % 8);
    return c;
}

// A region's stored row: the copy it holds, and which copy each of its
// parts came from, as the trigger would write it.
struct Row {
    Copy copy;
    Copy stamp_source, body_source;
};

void apply(Row& row, const Copy& incoming) {
    const auto r = causal::copies::resolve(row.copy, incoming);
    if (!r.changes) return;
    if (r.stamp_from_incoming) row.stamp_source = incoming;
    if (r.body_from_incoming) row.body_source = incoming;
    row.copy = Copy{row.stamp_source.hlc, r.deleted_at};
}

TEST(Copies, CombineIsAssociativeCommutativeAndIdempotent) {
    std::mt19937_64 random(11);
    for (int i = 0; i < 20000; ++i) {
        const Copy a = random_copy(random), b = random_copy(random), c = random_copy(random);
        using causal::copies::combine;
        EXPECT_EQ(combine(a, b), combine(b, a));
        EXPECT_EQ(combine(combine(a, b), c), combine(a, combine(b, c)));
        EXPECT_EQ(combine(a, a), a);
    }
}

TEST(Copies, TheSmallestHlcKeepsItsStampAndDeletionWins) {
    using causal::copies::combine;
    const Copy live_early{at(1), std::nullopt}, live_late{at(2), std::nullopt};
    const Copy deleted_late{at(2), at(20)}, deleted_early{at(1), at(30)};
    EXPECT_EQ(combine(live_late, live_early), live_early);
    EXPECT_EQ(combine(live_early, deleted_late), (Copy{at(1), at(20)}));
    EXPECT_EQ(combine(deleted_late, deleted_early), (Copy{at(1), at(20)}));
}

// Every region receives the copies in its own order, one at a time, and
// rewrites its row by resolve(): all end with the same row, whose body is
// a tombstone's once any copy was one.
TEST(Copies, EveryArrivalOrderStoresTheSameRow) {
    std::mt19937_64 random(12);
    for (int trial = 0; trial < 5000; ++trial) {
        std::vector<Copy> copies(1 + random() % 5);
        for (auto& c : copies) c = random_copy(random);
        Copy expected = copies[0];
        for (const Copy& c : copies) expected = causal::copies::combine(expected, c);
        for (int order = 0; order < 6; ++order) {
            std::shuffle(copies.begin(), copies.end(), random);
            Row row{copies[0], copies[0], copies[0]};
            for (const Copy& c : copies) apply(row, c);
            ASSERT_EQ(row.copy, expected);
            EXPECT_EQ(row.stamp_source.hlc, expected.hlc);
            EXPECT_EQ(row.body_source.deleted_at.has_value(), expected.deleted_at.has_value())
                << "a deleted message keeps a tombstone's (erased) body";
            // A copy that changes nothing is a duplicate: relay loops end.
            for (const Copy& c : copies) EXPECT_FALSE(causal::copies::resolve(row.copy, c).changes);
        }
    }
}

}  // namespace
