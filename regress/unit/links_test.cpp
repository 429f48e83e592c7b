// The names of the mesh's links: the same bytes wherever they are asked.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "links.hpp"

namespace {

TEST(LinkNames, AsciiLettersLowerDigitsKeptTheRestUnderscores) {
    EXPECT_EQ(causal::link_name("US-East-1", "eu.west"), "causal_us_east_1_to_eu_west");
}

TEST(LinkNames, EveryByteOfANonAsciiLetterIsOneUnderscore) {
    // "zürich": ü is two bytes in UTF-8, so two underscores, whatever the locale.
    EXPECT_EQ(causal::object_name("z\xc3\xbcrich"), "z__rich");
    EXPECT_EQ(causal::link_name("\xe6\x9d\xb1\xe4\xba\xac", "a"), "causal_" + std::string(6, '_') + "_to_a");
}

TEST(LinkNames, AtMostTheBytesPostgresKeepsOfAName) {
    const std::string long_region(80, 'r');
    const std::string name = causal::link_name(long_region, "peer");
    EXPECT_EQ(name.size(), causal::kMaxNameBytes);
    EXPECT_EQ(name, ("causal_" + long_region).substr(0, causal::kMaxNameBytes));
}

TEST(LinkNames, RandomRegionNamesGiveIdentifiersPostgresKeepsAsTheyAre) {
    std::mt19937 random(20261207);
    for (int i = 0; i < 2000; ++i) {
        std::string from, to;
        for (int n = random() % 40; n > 0; --n) from += static_cast<char>(random() % 255 + 1);
        for (int n = random() % 40; n > 0; --n) to += static_cast<char>(random() % 255 + 1);
        const std::string name = causal::link_name(from, to);
        ASSERT_LE(name.size(), causal::kMaxNameBytes);
        for (char c : name) ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << name;
        ASSERT_EQ(name, causal::link_name(from, to));
    }
}

}  // namespace
