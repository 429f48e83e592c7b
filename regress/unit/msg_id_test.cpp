#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "msg_id.hpp"

namespace {

TEST(MsgId, IsAVersion7UuidOfTheRfc9562Variant) {
    std::mt19937_64 rng(3);
    for (int i = 0; i < 10000; ++i) {
        uint8_t random[10], id[16];
        for (auto& b : random) b = static_cast<uint8_t>(rng());
        causal::uuid_v7(rng() >> 16, random, id);
        EXPECT_EQ(id[6] >> 4, 7);
        EXPECT_EQ(id[8] >> 6, 2);
    }
}

TEST(MsgId, CarriesTheMillisecondsBigEndianSoIdsSortByTime) {
    const uint8_t random[10] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    const uint8_t zeros[10] = {};
    uint8_t earlier[16], later[16];
    causal::uuid_v7(1732590000123, random, earlier);  // largest random part
    causal::uuid_v7(1732590000124, zeros, later);     // smallest random part
    EXPECT_LT(std::memcmp(earlier, later, 16), 0);
    const uint8_t expected[6] = {0x01, 0x93, 0x66, 0x69, 0x57, 0xFB};  // 1732590000123
    EXPECT_EQ(std::memcmp(earlier, expected, 6), 0);
}

TEST(MsgId, KeepsSeventyFourRandomBits) {
    // Flipping any random bit that is not overwritten by version or variant
    // changes the id.
    uint8_t random[10] = {}, base[16], flipped[16];
    causal::uuid_v7(1, random, base);
    int changed = 0;
    for (int byte = 0; byte < 10; ++byte)
        for (int bit = 0; bit < 8; ++bit) {
            random[byte] ^= static_cast<uint8_t>(1 << bit);
            causal::uuid_v7(1, random, flipped);
            changed += std::memcmp(base, flipped, 16) != 0;
            random[byte] ^= static_cast<uint8_t>(1 << bit);
        }
    EXPECT_EQ(changed, 74);
}

}  // namespace
