// The hlc value type on its own: text form, validation, order, the
// CockroachDB decimal, and the byte layout the extension stores on disk.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iomanip>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "error.hpp"
#include "hlc.hpp"

namespace {

using causal::compare;
using causal::Error;
using causal::ErrorKind;
using causal::Hlc;

constexpr uint64_t kMaxPhysical = (uint64_t{1} << 48) - 1;

// The expected text is built with iostreams rather than printf so that a
// shared formatting mistake cannot make both sides agree.
std::string canonical(uint64_t physical, uint32_t logical, uint32_t node) {
    std::ostringstream out;
    out << physical << '.' << std::setw(5) << std::setfill('0') << logical << '@' << node;
    return out.str();
}

std::tuple<uint64_t, uint32_t, uint32_t> parts(const Hlc& h) {
    return {h.physical_ms(), h.logical(), h.node};
}

Hlc make(uint64_t physical, uint32_t logical, uint32_t node) {
    return Hlc::from_parts(static_cast<int64_t>(physical), logical, node);
}

// Runs `fn`, which must throw causal::Error of `kind`; says which input failed.
template <typename Fn>
void expect_error(ErrorKind kind, const std::string& input, Fn fn) {
    try {
        fn();
        ADD_FAILURE() << "no error for " << input;
    } catch (const Error& e) {
        EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind))
            << "wrong kind for " << input << ": " << e.what();
        EXPECT_NE(std::string(e.what()), "") << input;
    }
}

void expect_parse_error(ErrorKind kind, const std::string& text) {
    expect_error(kind, "parse(\"" + text + "\")", [&] { causal::parse(text); });
}

// ---------------------------------------------------------------------------
// Text form

TEST(HlcText, DocumentedExample) {
    Hlc h = causal::parse("1732590000123.00042@7");
    EXPECT_EQ(h.physical_ms(), 1732590000123u);
    EXPECT_EQ(h.logical(), 42u);
    EXPECT_EQ(h.node, 7u);
    EXPECT_EQ(causal::to_string(make(1732590000123, 42, 7)), "1732590000123.00042@7");
}

TEST(HlcText, ExtremesFitTheBufferAndRoundTrip) {
    // The longest text there is must fit kHlcTextMax with its terminator;
    // a truncating snprintf would show up here as a shorter string.
    const std::string longest = "281474976710655.65535@65535";
    Hlc max = make(kMaxPhysical, 65535, 65535);
    char buf[causal::kHlcTextMax];
    size_t n = causal::format(max, buf);
    EXPECT_EQ(n, longest.size());
    EXPECT_EQ(std::string(buf), longest);
    EXPECT_EQ(causal::parse(longest), max);

    EXPECT_EQ(causal::to_string(Hlc{}), "0.00000@0");
    EXPECT_EQ(causal::parse("0.00000@0"), Hlc{});
}

TEST(HlcText, RandomValuesRoundTripExactly) {
    std::mt19937_64 rng(0x1ec0ffee);
    std::uniform_int_distribution<uint64_t> physical(0, kMaxPhysical);
    std::uniform_int_distribution<uint32_t> sixteen(0, 0xFFFF);
    for (int i = 0; i < 20000; ++i) {
        // Small parts too, so that zero padding and short numbers are covered.
        uint64_t p = i % 4 == 0 ? physical(rng) % 1000 : physical(rng);
        uint32_t l = i % 3 == 0 ? sixteen(rng) % 10 : sixteen(rng);
        uint32_t n = sixteen(rng);
        Hlc value = make(p, l, n);
        std::string text = causal::to_string(value);
        ASSERT_EQ(text, canonical(p, l, n));
        Hlc back = causal::parse(text);
        ASSERT_EQ(parts(back), parts(value)) << text;
        ASSERT_EQ(std::memcmp(&back, &value, sizeof(Hlc)), 0) << text;
        ASSERT_EQ(causal::to_string(back), text);
    }
}

TEST(HlcText, CanonicalTextIsAFixedPoint) {
    for (const char* s : {"0.00000@0", "1.00001@1", "1732590000123.00042@7", "999.65535@0",
                          "281474976710655.00000@65535", "5.10000@12345"}) {
        EXPECT_EQ(causal::to_string(causal::parse(s)), s);
    }
}

TEST(HlcText, SurroundingBlanksAreAccepted) {
    const Hlc expected = make(1732590000123, 42, 7);
    for (const char* s : {" 1732590000123.00042@7", "1732590000123.00042@7 ",
                          "  \t1732590000123.00042@7\n\r ", "\v\f1732590000123.00042@7\f"}) {
        EXPECT_EQ(causal::parse(s), expected) << '"' << s << '"';
    }
}

TEST(HlcText, LeadingZerosInPhysicalAndNodeAreInvalidText) {
    // One value, one text: the canonical form is the only one accepted.
    for (const char* s : {"0001732590000123.00042@7", "01.00000@1", "1732590000123.00042@00007",
                          "1.00000@01", "00.00000@0", "0.00000@00"}) {
        expect_parse_error(ErrorKind::InvalidText, s);
    }
    EXPECT_EQ(causal::parse("0.00000@0"), Hlc{});
    EXPECT_EQ(causal::parse("10.00000@10"), make(10, 0, 10));
}

TEST(HlcText, MalformedTextIsInvalidText) {
    for (const char* s : {
             "", " ", "\t\n", "garbage", "1732590000123", "1732590000123.", "1732590000123.00042",
             "1732590000123.00042@", ".00042@7", "@7", "1732590000123@7", "1732590000123.@7",
             // the counter is exactly five digits
             "1732590000123.42@7", "1732590000123.0042@7", "1732590000123.000042@7",
             // signs
             "-1732590000123.00042@7", "+1732590000123.00042@7", "1732590000123.-0042@7",
             "1732590000123.+0042@7", "1732590000123.00042@-7", "1732590000123.00042@+7",
             // embedded blanks
             "1732590000123 .00042@7", "1732590000123. 00042@7", "1732590000123.00042 @7",
             "1732590000123.00042@ 7", "17325 90000123.00042@7", "1732590000123.00042@7 8",
             // trailing junk, repeated parts, other separators
             "1732590000123.00042@7x", "1732590000123.00042@7@8", "1732590000123.00042@7.",
             "1732590000123,00042@7", "1732590000123.00042#7", "1732590000123.00042@0x7",
             "0x10.00042@7", "1e3.00042@7", "1732590000123.00042@7\x01"}) {
        expect_parse_error(ErrorKind::InvalidText, s);
    }
    // An embedded NUL is not the end of the text.
    expect_parse_error(ErrorKind::InvalidText, std::string("1.00000@1\0", 10));
    expect_error(ErrorKind::InvalidText, "parse with NUL inside",
                 [] { causal::parse(std::string_view("1.00000@1\0002", 11)); });
}

TEST(HlcText, PartsThatDoNotFitAreOutOfRange) {
    for (const char* s : {
             "281474976710656.00000@1",        // 2^48
             "281474976710657.00000@1",        //
             "999999999999999.00000@1",        // 15 digits but too large
             "1000000000000000.00000@1",       // 16 digits
             "1.65536@1", "1.65537@1", "1.70000@1", "1.99999@1", "1.00000@65536",
             "1.00000@99999", "1.00000@4294967296", "1.00000@18446744073709551617",
             // thirty digits: must not wrap around a 64-bit accumulator
             "999999999999999999999999999999.00000@1",
             "184467440737095516160000000000.00000@1",  // 2^64 * 10^10
             "1.00000@999999999999999999999999999999",
         }) {
        expect_parse_error(ErrorKind::OutOfRange, s);
    }
    // One below each limit is fine.
    EXPECT_EQ(parts(causal::parse("281474976710655.65535@65535")),
              parts(make(kMaxPhysical, 65535, 65535)));
}

TEST(HlcText, ParseOfARunThatWrapsModulo2To64IsNotAcceptedAsSmallValue) {
    // 2^64 + 5: an accumulator that overflowed silently would read 5.
    expect_parse_error(ErrorKind::OutOfRange, "18446744073709551621.00000@1");
    expect_parse_error(ErrorKind::OutOfRange, "1.00000@18446744073709551621");
}

// ---------------------------------------------------------------------------
// from_parts

TEST(HlcFromParts, BoundariesAreAccepted) {
    EXPECT_EQ(parts(Hlc::from_parts(0, 0, 0)), std::make_tuple(uint64_t{0}, 0u, 0u));
    Hlc max = Hlc::from_parts(static_cast<int64_t>(kMaxPhysical), 65535, 65535);
    EXPECT_EQ(parts(max), std::make_tuple(kMaxPhysical, 65535u, 65535u));
    // All bits of the packed word are used, and nothing spilled into the node.
    EXPECT_EQ(max.wall, ~uint64_t{0});
}

TEST(HlcFromParts, EachPartIsValidated) {
    const int64_t max_p = static_cast<int64_t>(kMaxPhysical);
    struct Case {
        int64_t p, l, n;
    } cases[] = {
        {-1, 0, 0},        {max_p + 1, 0, 0}, {INT64_MIN, 0, 0}, {INT64_MAX, 0, 0},
        {0, -1, 0},        {0, 65536, 0},     {0, INT64_MIN, 0}, {0, INT64_MAX, 0},
        {0, 0, -1},        {0, 0, 65536},     {0, 0, INT64_MIN}, {0, 0, INT64_MAX},
        {0, 0, 70000},     {1, 1 << 20, 1},   {max_p + 1, 65536, 65536},
    };
    for (const Case& c : cases) {
        expect_error(ErrorKind::OutOfRange,
                     "from_parts(" + std::to_string(c.p) + ", " + std::to_string(c.l) + ", " +
                         std::to_string(c.n) + ")",
                     [&] { Hlc::from_parts(c.p, c.l, c.n); });
    }
}

TEST(HlcFromParts, ErrorNamesTheOffendingPart) {
    // The SQL error message is how a user finds the wrong argument.
    auto message = [](int64_t p, int64_t l, int64_t n) {
        try {
            Hlc::from_parts(p, l, n);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    EXPECT_NE(message(-1, 0, 0).find("physical"), std::string::npos);
    EXPECT_NE(message(0, 65536, 0).find("logical"), std::string::npos);
    EXPECT_NE(message(0, 0, 65536).find("node"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Order

TEST(HlcOrder, SortingByCompareEqualsSortingByTheTuple) {
    std::mt19937_64 rng(42);
    // Narrow ranges so that equal physical times and equal counters are
    // common and the later keys actually decide.
    std::uniform_int_distribution<uint64_t> physical(1732590000000, 1732590000004);
    std::uniform_int_distribution<uint32_t> small(0, 3);
    std::uniform_int_distribution<uint32_t> sixteen(0, 0xFFFF);
    for (int round = 0; round < 50; ++round) {
        std::vector<Hlc> values;
        for (int i = 0; i < 500; ++i) {
            bool wide = i % 5 == 0;
            values.push_back(make(wide ? physical(rng) + rng() % kMaxPhysical / 2 : physical(rng),
                                  wide ? sixteen(rng) : small(rng) * 21845,
                                  wide ? sixteen(rng) : small(rng) * 21845));
        }
        std::vector<Hlc> by_compare = values, by_tuple = values;
        std::sort(by_compare.begin(), by_compare.end(),
                  [](const Hlc& a, const Hlc& b) { return compare(a, b) < 0; });
        std::sort(by_tuple.begin(), by_tuple.end(),
                  [](const Hlc& a, const Hlc& b) { return parts(a) < parts(b); });
        for (size_t i = 0; i < values.size(); ++i)
            ASSERT_EQ(parts(by_compare[i]), parts(by_tuple[i])) << "position " << i;
    }
}

TEST(HlcOrder, CompareIsATotalOrderOnRandomTriples) {
    std::mt19937_64 rng(7);
    auto draw = [&] {
        // Three values per part: collisions in every position are frequent.
        return make(1000 + rng() % 3, static_cast<uint32_t>(rng() % 3) * 32767,
                    static_cast<uint32_t>(rng() % 3) * 32767);
    };
    for (int i = 0; i < 200000; ++i) {
        Hlc a = draw(), b = draw(), c = draw();
        int ab = compare(a, b), ba = compare(b, a), bc = compare(b, c), ac = compare(a, c);
        ASSERT_TRUE(ab == -1 || ab == 0 || ab == 1);
        ASSERT_EQ(ab, -ba) << "antisymmetry";
        ASSERT_EQ(ab == 0, parts(a) == parts(b)) << "equal exactly when all parts are equal";
        ASSERT_EQ(ab < 0, parts(a) < parts(b));
        if (ab <= 0 && bc <= 0) {
            ASSERT_LE(ac, 0) << "transitivity";
        }
        if (ab < 0 && bc < 0) {
            ASSERT_LT(ac, 0) << "strict transitivity";
        }
        ASSERT_EQ(compare(a, a), 0) << "reflexivity";
        // The operators agree with compare.
        ASSERT_EQ(a < b, ab < 0);
        ASSERT_EQ(a <= b, ab <= 0);
        ASSERT_EQ(a > b, ab > 0);
        ASSERT_EQ(a >= b, ab >= 0);
        ASSERT_EQ(a == b, ab == 0);
        ASSERT_EQ(a != b, ab != 0);
    }
}

TEST(HlcOrder, PhysicalDominatesLogicalDominatesNode) {
    EXPECT_LT(make(1, 65535, 65535), make(2, 0, 0));
    EXPECT_LT(make(5, 1, 65535), make(5, 2, 0));
    EXPECT_LT(make(5, 2, 3), make(5, 2, 4));
    EXPECT_LT(make(kMaxPhysical - 1, 65535, 65535), make(kMaxPhysical, 0, 0));
}

// ---------------------------------------------------------------------------
// CockroachDB decimal

std::string crdb(const Hlc& h) {
    char buf[causal::kCockroachDecimalMax];
    size_t n = causal::to_cockroach_decimal(h, buf);
    EXPECT_EQ(n, std::strlen(buf));
    return std::string(buf, n);
}

// Nanoseconds through 128-bit arithmetic: an independent route to the digits
// (the implementation avoids the multiplication altogether).
std::string nanos_decimal(uint64_t physical_ms, uint32_t logical) {
    unsigned __int128 ns = static_cast<unsigned __int128>(physical_ms) * 1000000u;
    std::string digits;
    do {
        digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(ns % 10)));
        ns /= 10;
    } while (ns != 0);
    std::ostringstream out;
    out << digits << '.' << std::setw(10) << std::setfill('0') << logical;
    return out.str();
}

TEST(HlcCockroach, DocumentedExamples) {
    EXPECT_EQ(crdb(make(1732590000123, 42, 7)), "1732590000123000000.0000000042");
    EXPECT_EQ(crdb(make(0, 5, 1)), "0.0000000005");
    EXPECT_EQ(crdb(make(0, 0, 0)), "0.0000000000");
    EXPECT_EQ(crdb(make(1, 65535, 0)), "1000000.0000065535");
}

TEST(HlcCockroach, NodeIsNotPartOfIt) {
    EXPECT_EQ(crdb(make(1732590000123, 42, 7)), crdb(make(1732590000123, 42, 65535)));
}

TEST(HlcCockroach, MaxPhysicalDoesNotOverflow) {
    // 2^48 ms is about 2.8e20 ns, beyond 2^64 (1.8e19).
    EXPECT_EQ(crdb(make(kMaxPhysical, 65535, 65535)), "281474976710655000000.0000065535");
}

TEST(HlcCockroach, RandomValuesMatchNanosecondArithmetic) {
    std::mt19937_64 rng(99);
    for (int i = 0; i < 20000; ++i) {
        uint64_t p = i % 10 == 0 ? rng() % 1000 : rng() % (kMaxPhysical + 1);
        uint32_t l = static_cast<uint32_t>(rng() % 65536);
        ASSERT_EQ(crdb(make(p, l, 1)), nanos_decimal(p, l)) << p << ' ' << l;
    }
}

// ---------------------------------------------------------------------------
// Layout

TEST(HlcLayout, SixteenBytesWithZeroReservedBytes) {
    static_assert(sizeof(Hlc) == 16, "causal.hlc is INTERNALLENGTH = 16");
    // Btree deduplication compares datums bytewise: equal values must be
    // equal bytes however they were made. Build each on dirty memory so that
    // a constructor that skipped the reserved bytes would leave garbage.
    alignas(Hlc) unsigned char a_mem[sizeof(Hlc)], b_mem[sizeof(Hlc)], c_mem[sizeof(Hlc)];
    std::memset(a_mem, 0xA5, sizeof a_mem);
    std::memset(b_mem, 0x5A, sizeof b_mem);
    std::memset(c_mem, 0xFF, sizeof c_mem);
    Hlc* a = new (a_mem) Hlc(causal::parse("  1732590000123.00042@7 "));
    Hlc* b = new (b_mem) Hlc(Hlc::from_parts(1732590000123, 42, 7));
    Hlc* c = new (c_mem) Hlc(causal::parse_binary(causal::binary(*b).data(), causal::kHlcBinarySize));
    EXPECT_EQ(std::memcmp(a, b, sizeof(Hlc)), 0);
    EXPECT_EQ(std::memcmp(a, c, sizeof(Hlc)), 0);
    for (const Hlc* h : {a, b, c})
        for (uint16_t r : h->reserved) EXPECT_EQ(r, 0);
}

TEST(HlcLayout, PackedWordOrdersLikeThePair) {
    // The clock's CAS compares the packed word alone.
    EXPECT_EQ(make(3, 9, 0).wall, (uint64_t{3} << 16) | 9);
    EXPECT_EQ(Hlc::pack(3, 9), make(3, 9, 0).wall);
    EXPECT_LT(Hlc::pack(3, 65535), Hlc::pack(4, 0));
    EXPECT_EQ(Hlc::pack(kMaxPhysical, 65535), ~uint64_t{0});
}

// Abbreviated keys

// Values drawn so that ties on every part are common, across the era
// boundaries (2020 and 2159) and the node cap (63) as well as inside.
Hlc random_sort_value(std::mt19937_64& rng) {
    static const uint64_t kEraStart = 1577836800000, kEraEnd = kEraStart + (uint64_t{1} << 42);
    static const uint64_t anchors[] = {0, kEraStart - 2, kEraStart, 1732590000000,
                                       kEraEnd - 2, kEraEnd, kMaxPhysical - 3};
    uint64_t physical = anchors[rng() % 7] + rng() % 3;
    if (physical > kMaxPhysical) physical = kMaxPhysical;
    uint32_t logical = rng() % 2 ? rng() % 3 : 65533 + rng() % 3;
    uint32_t node = rng() % 2 ? rng() % 3 : 61 + rng() % 6;
    return make(physical, logical, node);
}

TEST(HlcAbbreviatedKey, NeverOrdersAgainstTheValues) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 500000; ++i) {
        Hlc a = random_sort_value(rng), b = random_sort_value(rng);
        if (a < b) EXPECT_LE(causal::abbreviated_key(a), causal::abbreviated_key(b))
            << causal::to_string(a) << " < " << causal::to_string(b);
        if (a == b) EXPECT_EQ(causal::abbreviated_key(a), causal::abbreviated_key(b));
    }
}

TEST(HlcAbbreviatedKey, IsTheWholeOrderForThisEraAndSmallNodeIds) {
    // Inside 2020..2159 with node ids below 63 a key tie means a value tie,
    // so the sort never needs its full comparison.
    std::mt19937_64 rng(11);
    std::uniform_int_distribution<uint64_t> era(1577836800000, 1577836800000 + (uint64_t{1} << 42) - 1);
    for (int i = 0; i < 500000; ++i) {
        uint64_t physical = era(rng);
        Hlc a = make(physical, rng() % 4, rng() % 63);
        Hlc b = make(physical + rng() % 2, rng() % 4, rng() % 63);
        EXPECT_EQ(causal::compare(a, b) == 0, causal::abbreviated_key(a) == causal::abbreviated_key(b));
        EXPECT_EQ(causal::compare(a, b) < 0, causal::abbreviated_key(a) < causal::abbreviated_key(b));
    }
    // The boundaries: first and last millisecond of the era, the node cap.
    EXPECT_LT(causal::abbreviated_key(make(1577836800000, 0, 0)),
              causal::abbreviated_key(make(1577836800000, 0, 1)));
    EXPECT_EQ(causal::abbreviated_key(make(1577836799999, 65535, 65535)), 0u);
    EXPECT_EQ(causal::abbreviated_key(make(1732590000000, 1, 63)),
              causal::abbreviated_key(make(1732590000000, 1, 64)));
}

}  // namespace

// ---------------------------------------------------------------------------
// Binary form

TEST(HlcBinary, IsTenBytesInNetworkOrder) {
    const auto bytes = causal::binary(make(0x0102030405, 0x0607, 0x0809));
    const std::array<uint8_t, causal::kHlcBinarySize> want = {0x00, 0x01, 0x02, 0x03, 0x04,
                                                              0x05, 0x06, 0x07, 0x08, 0x09};
    EXPECT_EQ(bytes, want);
}

TEST(HlcBinary, EveryTenBytesAreAValueThatRoundTrips) {
    std::mt19937_64 random(7);
    for (int i = 0; i < 10000; ++i) {
        std::array<uint8_t, causal::kHlcBinarySize> bytes;
        for (auto& b : bytes) b = static_cast<uint8_t>(random());
        const Hlc value = causal::parse_binary(bytes.data(), bytes.size());
        EXPECT_EQ(causal::binary(value), bytes);
        for (uint16_t r : value.reserved) EXPECT_EQ(r, 0);
        EXPECT_EQ(causal::parse(causal::to_string(value)), value);
    }
}

TEST(HlcBinary, AnyOtherLengthIsInvalidBinary) {
    const uint8_t bytes[16] = {};
    for (size_t n : {size_t{0}, size_t{1}, size_t{9}, size_t{11}, size_t{16}})
        expect_error(ErrorKind::InvalidBinary, std::to_string(n) + " bytes",
                     [&] { causal::parse_binary(bytes, n); });
}
