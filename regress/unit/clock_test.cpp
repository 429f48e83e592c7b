// The clock algorithm with the wall clock injected: advance, the max-offset
// guard, the ceiling that makes restarts safe, the ceiling file, and many
// threads sharing one state the way backends share shared memory.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "clock.hpp"
#include "error.hpp"
#include "hlc.hpp"

namespace {

namespace fs = std::filesystem;
using causal::advance;
using causal::ClockState;
using causal::Error;
using causal::ErrorKind;
using causal::Hlc;
using causal::Tick;
using causal::TickStatus;

constexpr uint64_t kNow = 1732590000123;       // an ordinary wall clock reading
constexpr uint64_t kMaxOffset = 500;
constexpr uint64_t kFarCeiling = uint64_t{1} << 48;  // never in the way

uint64_t pack(uint64_t ms, uint32_t logical) { return Hlc::pack(ms, logical); }
uint64_t ms_of(uint64_t wall) { return wall >> 16; }
uint32_t logical_of(uint64_t wall) { return static_cast<uint32_t>(wall & 0xFFFF); }

const char* name(TickStatus s) {
    switch (s) {
        case TickStatus::Issued: return "Issued";
        case TickStatus::WaitForWallMs: return "WaitForWallMs";
        case TickStatus::NeedsCeiling: return "NeedsCeiling";
        case TickStatus::Exhausted: return "Exhausted";
    }
    return "?";
}

// A state as a restarted or long-running instance would hold it.
void set(ClockState& s, uint64_t last, uint64_t ceiling_ms = kFarCeiling) {
    s.last.store(last);
    s.ceiling_ms.store(ceiling_ms);
}

// Issues one value or fails the test with the status it got instead.
uint64_t issue(ClockState& s, uint64_t now, std::optional<uint64_t> remote = std::nullopt,
               uint64_t max_offset = kMaxOffset) {
    Tick t = advance(s, now, remote, max_offset);
    EXPECT_EQ(t.status, TickStatus::Issued) << name(t.status) << " ms=" << t.ms;
    return t.wall;
}

// ---------------------------------------------------------------------------
// Send and local events

TEST(ClockAdvance, FirstEventTakesTheWallClock) {
    ClockState s;
    set(s, 0);
    EXPECT_EQ(issue(s, kNow), pack(kNow, 0));
    EXPECT_EQ(s.last.load(), pack(kNow, 0));
}

TEST(ClockAdvance, WallClockAheadOfLastResetsTheCounter) {
    ClockState s;
    set(s, pack(kNow, 17));
    EXPECT_EQ(issue(s, kNow + 1), pack(kNow + 1, 0));
    EXPECT_EQ(issue(s, kNow + 250), pack(kNow + 250, 0));
}

TEST(ClockAdvance, SameMillisecondBumpsTheCounter) {
    ClockState s;
    set(s, 0);
    for (uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(issue(s, kNow), pack(kNow, i));
}

TEST(ClockAdvance, WallClockBehindLastKeepsLastAndBumps) {
    // The wall clock stepped back (NTP): the clock must not follow it.
    ClockState s;
    set(s, pack(kNow, 5));
    EXPECT_EQ(issue(s, kNow - 1), pack(kNow, 6));
    EXPECT_EQ(issue(s, kNow - 400), pack(kNow, 7));
    EXPECT_EQ(issue(s, 0), pack(kNow, 8));
}

// ---------------------------------------------------------------------------
// Receive events

TEST(ClockAdvance, ReceiveAdoptsARemoteAheadOfEverything) {
    ClockState s;
    set(s, pack(kNow, 5));
    uint64_t remote = pack(kNow + 200, 7);
    uint64_t got = issue(s, kNow, remote);
    EXPECT_EQ(got, pack(kNow + 200, 8));
    EXPECT_GT(got, remote);
}

TEST(ClockAdvance, ReceiveWithEqualPhysicalTakesTheLargerCounter) {
    ClockState s;
    set(s, pack(kNow, 5));
    EXPECT_EQ(issue(s, kNow, pack(kNow, 9)), pack(kNow, 10));
    EXPECT_EQ(issue(s, kNow, pack(kNow, 3)), pack(kNow, 11));
}

TEST(ClockAdvance, ReceiveOfAnOldRemoteIsALocalTick) {
    ClockState s;
    set(s, pack(kNow, 5));
    EXPECT_EQ(issue(s, kNow + 100, pack(kNow - 1000, 60000)), pack(kNow + 100, 0));
    EXPECT_EQ(issue(s, kNow + 100, pack(kNow + 100, 4)), pack(kNow + 100, 5));
}

TEST(ClockAdvance, ReceiveWhenTheWallClockLeads) {
    ClockState s;
    set(s, pack(kNow - 10, 5));
    EXPECT_EQ(issue(s, kNow, pack(kNow, 4)), pack(kNow, 5));
}

// The result of every event is the least packed value that is above the last
// value, above the remote and not below the wall clock: the HLC rule written
// as one max over packed words instead of the case analysis in the code.
TEST(ClockAdvance, RandomEventsIssueTheLeastValueAboveLastRemoteAndNow) {
    std::mt19937_64 rng(20241126);
    auto pick_logical = [&]() -> uint32_t {
        switch (rng() % 5) {
            case 0: return 0;
            case 1: return 65535;
            case 2: return 65534;
            case 3: return static_cast<uint32_t>(rng() % 4);
            default: return static_cast<uint32_t>(rng() % 65536);
        }
    };
    const uint64_t max_offsets[] = {0, 1, 2, 500};
    int issued = 0, waited = 0, carried = 0, ceilinged = 0;
    for (int i = 0; i < 300000; ++i) {
        // Physical times in a window of four milliseconds, so ties are common.
        const uint64_t last = pack(kNow + rng() % 4, pick_logical());
        const uint64_t now = kNow + rng() % 4;
        std::optional<uint64_t> remote;
        if (rng() % 2) remote = pack(kNow + rng() % 4, pick_logical());
        const uint64_t max_offset = max_offsets[rng() % 4];
        const uint64_t ceiling = rng() % 3 ? kFarCeiling : kNow + rng() % 6;

        uint64_t expected = std::max(last + 1, pack(now, 0));
        if (remote) expected = std::max(expected, *remote + 1);
        // A full counter carried: the value is on a millisecond that is
        // neither the wall clock's nor below it.
        const bool carry = logical_of(expected) == 0 && ms_of(expected) > now;

        ClockState s;
        set(s, last, ceiling);
        const Tick t = advance(s, now, remote, max_offset);
        SCOPED_TRACE("last=" + causal::to_string(Hlc{last}) + " now=" + std::to_string(now) +
                     " remote=" + (remote ? causal::to_string(Hlc{*remote}) : "none") +
                     " max_offset=" + std::to_string(max_offset) +
                     " ceiling=" + std::to_string(ceiling));
        if (carry && ms_of(expected) - 1 <= now) {
            // The full counter is at the wall clock's millisecond: wait, never wrap.
            ASSERT_EQ(t.status, TickStatus::WaitForWallMs) << name(t.status);
            ASSERT_EQ(t.ms, ms_of(expected) - 1);
            ASSERT_EQ(s.last.load(), last);
            ++waited;
        } else if (ms_of(expected) >= ceiling) {
            ASSERT_EQ(t.status, TickStatus::NeedsCeiling) << name(t.status);
            ASSERT_EQ(t.ms, ms_of(expected));
            ASSERT_EQ(s.last.load(), last);
            ++ceilinged;
        } else {
            ASSERT_EQ(t.status, TickStatus::Issued) << name(t.status);
            ASSERT_EQ(t.wall, expected);
            ASSERT_EQ(s.last.load(), expected);
            ASSERT_GT(t.wall, last);
            if (remote) {
                ASSERT_GT(t.wall, *remote);
            }
            ASSERT_GE(ms_of(t.wall), now);
            carried += carry;
            ++issued;
        }
    }
    // Every branch was taken often enough to mean something.
    EXPECT_GT(issued, 10000);
    EXPECT_GT(waited, 1000);
    EXPECT_GT(carried, 1000);
    EXPECT_GT(ceilinged, 1000);
}

// ---------------------------------------------------------------------------
// Counter overflow

TEST(ClockOverflow, FullCounterWaitsForTheNextMillisecond) {
    ClockState s;
    set(s, pack(kNow, 65535));
    for (int attempt = 0; attempt < 3; ++attempt) {
        Tick t = advance(s, kNow, std::nullopt, kMaxOffset);
        EXPECT_EQ(t.status, TickStatus::WaitForWallMs) << name(t.status);
        EXPECT_EQ(t.ms, kNow);
        EXPECT_EQ(s.last.load(), pack(kNow, 65535)) << "nothing issued, nothing wrapped";
    }
    // Once the wall clock has passed that millisecond, the clock goes on.
    EXPECT_EQ(issue(s, kNow + 1), pack(kNow + 1, 0));
}

TEST(ClockOverflow, FullRemoteCounterAheadCarriesInsteadOfWaiting) {
    // A remote value (or a client's dep) just inside the max offset with a
    // full counter: waiting for the wall clock would stall every writer for
    // the whole lead, so the clock carries into the next millisecond.
    ClockState s;
    set(s, pack(kNow, 3));
    uint64_t remote = pack(kNow + kMaxOffset - 1, 65535);
    Tick t = advance(s, kNow, remote, kMaxOffset);
    EXPECT_EQ(t.status, TickStatus::Issued) << name(t.status);
    EXPECT_EQ(t.wall, pack(kNow + kMaxOffset, 0));
    EXPECT_EQ(issue(s, kNow), pack(kNow + kMaxOffset, 1));
}

TEST(ClockOverflow, SixtyFiveThousandFiveHundredThirtySixValuesPerMillisecond) {
    ClockState s;
    set(s, 0);
    uint64_t prev = 0;
    uint32_t count = 0;
    for (;;) {
        Tick t = advance(s, kNow, std::nullopt, kMaxOffset);
        if (t.status != TickStatus::Issued) {
            EXPECT_EQ(t.status, TickStatus::WaitForWallMs) << name(t.status);
            break;
        }
        ASSERT_GT(t.wall, prev);
        ASSERT_EQ(ms_of(t.wall), kNow);
        prev = t.wall;
        ASSERT_LE(++count, 65536u) << "issued more than the counter holds";
    }
    EXPECT_EQ(count, 65536u);
}

TEST(ClockOverflow, FarAheadOfTheWallClockTheCounterCarries) {
    // Restarted with the wall clock set back: waiting for the wall clock to
    // catch up could take minutes, so the counter carries into physical.
    ClockState s;
    const uint64_t ahead = kNow + 60000;
    set(s, pack(ahead, 65535));
    EXPECT_EQ(issue(s, kNow), pack(ahead + 1, 0));
    EXPECT_EQ(issue(s, kNow), pack(ahead + 1, 1));
}

TEST(ClockOverflow, OnlyAtTheWallClockMillisecondDoesAFullCounterWait) {
    ClockState at_wall;
    set(at_wall, pack(kNow, 65535));
    EXPECT_EQ(advance(at_wall, kNow, std::nullopt, kMaxOffset).status, TickStatus::WaitForWallMs);
    for (uint64_t lead : {uint64_t{1}, kMaxOffset - 1, kMaxOffset, kMaxOffset + 1}) {
        ClockState s;
        set(s, pack(kNow + lead, 65535));
        EXPECT_EQ(issue(s, kNow), pack(kNow + lead + 1, 0)) << "lead " << lead;
    }
}

TEST(ClockOverflow, CarryRespectsTheCeiling) {
    ClockState s;
    const uint64_t ahead = kNow + 60000;
    set(s, pack(ahead, 65535), ahead + 1);
    Tick t = advance(s, kNow, std::nullopt, kMaxOffset);
    EXPECT_EQ(t.status, TickStatus::NeedsCeiling) << name(t.status);
    EXPECT_EQ(t.ms, ahead + 1);
    EXPECT_EQ(s.last.load(), pack(ahead, 65535));
}

TEST(ClockOverflow, EndOfThePhysicalRangeIsExhaustedNotWrapped) {
    const uint64_t max_ms = Hlc::kMaxPhysicalMs;
    {
        // Carrying past the last millisecond.
        ClockState s;
        set(s, pack(max_ms, 65535), kFarCeiling + 1);
        Tick t = advance(s, max_ms - 10000, std::nullopt, kMaxOffset);
        EXPECT_EQ(t.status, TickStatus::Exhausted) << name(t.status);
        EXPECT_EQ(s.last.load(), pack(max_ms, 65535));
    }
    {
        // A wall clock beyond the representable range.
        ClockState s;
        set(s, pack(max_ms, 3), kFarCeiling + 1);
        Tick t = advance(s, max_ms + 1, std::nullopt, kMaxOffset);
        EXPECT_EQ(t.status, TickStatus::Exhausted) << name(t.status);
        EXPECT_EQ(s.last.load(), pack(max_ms, 3));
    }
    {
        // The last millisecond itself is usable.
        ClockState s;
        set(s, pack(max_ms - 1, 65535), kFarCeiling + 1);
        EXPECT_EQ(issue(s, max_ms), pack(max_ms, 0));
    }
}

// ---------------------------------------------------------------------------
// Ceiling

TEST(ClockCeiling, NothingIsIssuedAtOrAboveTheCeiling) {
    ClockState s;
    set(s, pack(kNow - 5, 2), kNow);
    Tick t = advance(s, kNow, std::nullopt, kMaxOffset);
    EXPECT_EQ(t.status, TickStatus::NeedsCeiling) << name(t.status);
    EXPECT_EQ(t.ms, kNow);
    EXPECT_EQ(s.last.load(), pack(kNow - 5, 2));

    // Below the ceiling is fine.
    EXPECT_EQ(issue(s, kNow - 1), pack(kNow - 1, 0));

    // A remote that would need the ceiling is refused the same way.
    t = advance(s, kNow - 1, pack(kNow + 10, 0), kMaxOffset);
    EXPECT_EQ(t.status, TickStatus::NeedsCeiling) << name(t.status);
    EXPECT_EQ(t.ms, kNow + 10);
    EXPECT_EQ(s.last.load(), pack(kNow - 1, 0));

    // Raised as the caller would, it issues.
    const uint64_t c = causal::next_ceiling(t.ms, kNow - 1, 1000);
    EXPECT_GT(c, t.ms);
    s.ceiling_ms.store(c);
    EXPECT_EQ(issue(s, kNow - 1, pack(kNow + 10, 0)), pack(kNow + 10, 1));
}

TEST(ClockCeiling, NewStateNeedsACeilingBeforeItsFirstValue) {
    ClockState s;  // ceiling 0: a fresh instance has persisted nothing yet
    Tick t = advance(s, kNow, std::nullopt, kMaxOffset);
    EXPECT_EQ(t.status, TickStatus::NeedsCeiling) << name(t.status);
    EXPECT_EQ(s.last.load(), 0u);
}

TEST(ClockCeiling, NextCeilingLeavesTheWindowAhead) {
    // Needed in the future (a remote ahead): the window counts from there.
    EXPECT_EQ(causal::next_ceiling(kNow + 300, kNow, 1000), kNow + 1300);
    // Needed in the past (a long idle clock): count from the wall clock.
    EXPECT_EQ(causal::next_ceiling(kNow - 300, kNow, 1000), kNow + 1000);
    for (uint64_t needed : {kNow - 1, kNow, kNow + 1})
        EXPECT_GT(causal::next_ceiling(needed, kNow, 1), needed);
}

TEST(ClockCeiling, RestartFloorIsAboveEverythingBelowTheCeiling) {
    const uint64_t c = kNow + 1000;
    const uint64_t floor = causal::restart_floor(c);
    EXPECT_GT(floor, pack(c - 1, 65535));
    const Hlc restarted{floor, 0}, last_before{pack(c - 1, 65535), 65535};
    EXPECT_GT(restarted, last_before);
}

// ---------------------------------------------------------------------------
// The max-offset guard

TEST(ClockRemoteCheck, LeadWithinMaxOffsetIsAdopted) {
    ClockState s;
    for (uint64_t lead : {uint64_t{0}, uint64_t{1}, kMaxOffset}) {
        auto r = causal::check_remote(s, pack(kNow + lead, 65535), kNow, kMaxOffset);
        EXPECT_TRUE(r.adopt) << lead;
        EXPECT_EQ(r.lead_ms, lead);
    }
    auto behind = causal::check_remote(s, pack(kNow - 10000, 0), kNow, kMaxOffset);
    EXPECT_TRUE(behind.adopt);
    EXPECT_EQ(behind.lead_ms, 0u);
    EXPECT_EQ(s.offset_rejections.load(), 0u);
    EXPECT_EQ(s.max_remote_lead_ms.load(), kMaxOffset);
}

TEST(ClockRemoteCheck, LeadBeyondMaxOffsetIsRejectedAndCounted) {
    ClockState s;
    set(s, pack(kNow, 0));
    auto r = causal::check_remote(s, pack(kNow + kMaxOffset + 1, 0), kNow, kMaxOffset);
    EXPECT_FALSE(r.adopt);
    EXPECT_EQ(r.lead_ms, kMaxOffset + 1);
    EXPECT_EQ(s.offset_rejections.load(), 1u);

    r = causal::check_remote(s, pack(kNow + 2000, 0), kNow, kMaxOffset);
    EXPECT_FALSE(r.adopt);
    r = causal::check_remote(s, pack(kNow + 700, 0), kNow, kMaxOffset);
    EXPECT_FALSE(r.adopt);
    // A smaller lead afterwards does not lower the recorded maximum.
    causal::check_remote(s, pack(kNow + 10, 0), kNow, kMaxOffset);
    EXPECT_EQ(s.offset_rejections.load(), 3u);
    EXPECT_EQ(s.max_remote_lead_ms.load(), 2000u);
    // The guard only looks; the clock itself was not touched.
    EXPECT_EQ(s.last.load(), pack(kNow, 0));
}

TEST(ClockRemoteCheck, CountersAreSafeUnderConcurrency) {
    ClockState s;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&s, t] {
            for (uint64_t i = 0; i < 20000; ++i)
                causal::check_remote(s, pack(kNow + 501 + (i * 4 + t) % 5000, 0), kNow,
                                     kMaxOffset);
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(s.offset_rejections.load(), 80000u);
    EXPECT_EQ(s.max_remote_lead_ms.load(), 501u + 4999u);
}

// ---------------------------------------------------------------------------
// Ceiling file

class CeilingFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/causal-ceiling-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
        dir_ = tmpl;
        path_ = dir_ + "/clock_ceiling";
    }
    void TearDown() override {
        if (!dir_.empty()) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }
    void put(const std::string& bytes) {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out << bytes;
    }
    std::string contents() {
        std::ifstream in(path_, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    std::vector<std::string> entries() {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
        std::sort(names.begin(), names.end());
        return names;
    }
    void expect_corrupt(const std::string& bytes, const std::string& label) {
        put(bytes);
        try {
            auto v = causal::CeilingFile(path_).read();
            ADD_FAILURE() << label << ": read back " << (v ? std::to_string(*v) : "nothing")
                          << " from corrupt file";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Io) << label << ": " << e.what();
        }
    }

    std::string dir_, path_;
};

TEST_F(CeilingFileTest, MissingFileIsANewInstance) {
    EXPECT_EQ(causal::CeilingFile(path_).read(), std::nullopt);
}

TEST_F(CeilingFileTest, WriteThenReadRoundTrips) {
    causal::CeilingFile f(path_);
    EXPECT_EQ(f.path(), path_);
    for (uint64_t v : {uint64_t{0}, uint64_t{1}, kNow, kNow + 10000, Hlc::kMaxPhysicalMs}) {
        f.write(v);
        EXPECT_EQ(f.read(), std::optional<uint64_t>(v));
        // Another object on the same path sees the same: it is on disk.
        EXPECT_EQ(causal::CeilingFile(path_).read(), std::optional<uint64_t>(v));
    }
}

TEST_F(CeilingFileTest, WriteLeavesOnlyTheFileBehind) {
    causal::CeilingFile f(path_);
    f.write(kNow);
    f.write(kNow + 1);
    EXPECT_EQ(entries(), std::vector<std::string>{"clock_ceiling"});
}

TEST_F(CeilingFileTest, WriteReplacesALargerFile) {
    // O_TRUNC or rename: either way no tail of the old content may survive.
    put(std::string(100, '9'));
    causal::CeilingFile f(path_);
    f.write(7);
    EXPECT_EQ(f.read(), std::optional<uint64_t>(7));
}

TEST_F(CeilingFileTest, GarbageIsCorrupt) {
    expect_corrupt("", "empty");
    expect_corrupt("hello world\n", "garbage");
    expect_corrupt("1732590000123\n", "number without header");
    expect_corrupt(std::string(200, 'x'), "long garbage");
}

TEST_F(CeilingFileTest, EveryTruncationIsCorrupt) {
    causal::CeilingFile(path_).write(kNow);
    const std::string good = contents();
    ASSERT_GT(good.size(), 14u);
    ASSERT_EQ(good.back(), '\n');
    for (size_t n = 0; n < good.size(); ++n)
        expect_corrupt(good.substr(0, n), "truncated to " + std::to_string(n) + " bytes");
}

TEST_F(CeilingFileTest, BadNumbersAreCorrupt) {
    causal::CeilingFile(path_).write(kNow);
    const std::string good = contents();
    const std::string number = std::to_string(kNow) + "\n";
    ASSERT_EQ(good.substr(good.size() - number.size()), number);
    const std::string header = good.substr(0, good.size() - number.size());

    // The boundary itself is fine...
    put(header + "281474976710655\n");
    EXPECT_EQ(causal::CeilingFile(path_).read(), std::optional<uint64_t>(Hlc::kMaxPhysicalMs));
    // ...one more is not.
    expect_corrupt(header + "281474976710656\n", "2^48");
    expect_corrupt(header + "18446744073709551615\n", "2^64-1");
    expect_corrupt(header + "18446744073709551621\n", "2^64+5 (wraps to 5)");
    expect_corrupt(header + "99999999999999999999999999999\n", "thirty digits");
    expect_corrupt(header + "-1\n", "negative");
    expect_corrupt(header + "abc\n", "not a number");
    expect_corrupt(header + "\n", "no number");
    expect_corrupt(header + "1732590000123x\n", "junk after the number");
    expect_corrupt(header + "1732590000123", "no newline");
    expect_corrupt(header + "1732590000123\ntrailing junk", "junk after the line");
    expect_corrupt(header + "+1732590000123\n", "a sign");
    expect_corrupt(header + " 1732590000123\n", "a leading blank");
    expect_corrupt(header + "-0\n", "minus zero");
    std::string other_header = header;
    other_header[other_header.size() / 2] ^= 0x20;
    expect_corrupt(other_header + number, "changed header");
}

TEST_F(CeilingFileTest, UnreadablePathIsAnErrorNotANewInstance) {
    // Only "does not exist" may mean "new instance"; anything else must stop
    // the clock, or a restart could begin below values already issued.
    put("x");
    causal::CeilingFile under_a_file(path_ + "/ceiling");
    try {
        auto v = under_a_file.read();
        ADD_FAILURE() << "read through a regular file gave "
                      << (v ? std::to_string(*v) : "nothing");
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    }
}

TEST_F(CeilingFileTest, WriteIntoAMissingDirectoryThrowsIo) {
    causal::CeilingFile f(dir_ + "/no/such/dir/clock_ceiling");
    try {
        f.write(kNow);
        ADD_FAILURE() << "write into a missing directory succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    }
}

// ---------------------------------------------------------------------------
// Restart

// One instance's clock: advances against an injected wall clock, persisting
// the ceiling through the real file before it uses it, as the extension does.
struct Instance {
    ClockState state;
    causal::CeilingFile file;
    uint64_t window_ms;
    int persists = 0;

    Instance(const std::string& path, uint64_t window) : file(path), window_ms(window) {
        // Start as the extension does: above anything a predecessor issued.
        if (auto c = file.read()) {
            state.last.store(causal::restart_floor(*c));
            state.ceiling_ms.store(*c);
        }
    }

    uint64_t tick(uint64_t now) {
        for (int attempt = 0; attempt < 4; ++attempt) {
            Tick t = advance(state, now, std::nullopt, kMaxOffset);
            if (t.status == TickStatus::Issued) return t.wall;
            if (t.status != TickStatus::NeedsCeiling) {
                ADD_FAILURE() << name(t.status) << " ms=" << t.ms;
                return 0;
            }
            const uint64_t c = causal::next_ceiling(t.ms, now, window_ms);
            file.write(c);  // durable first...
            state.ceiling_ms.store(c);  // ...then usable
            ++persists;
        }
        ADD_FAILURE() << "ceiling never sufficed";
        return 0;
    }
};

// Restarts need the same scratch directory for their ceiling file.
class ClockRestartTest : public CeilingFileTest {};

TEST_F(ClockRestartTest, WallClockSetBackByMinutesStillIssuesAboveEverythingBefore) {
    uint64_t max_before = 0;
    uint64_t wall = kNow;
    {
        Instance first(path_, 2000);
        for (int i = 0; i < 50000; ++i) {
            if (i % 7 == 0) ++wall;  // about seven events per millisecond
            uint64_t v = first.tick(wall);
            ASSERT_GT(v, max_before);
            max_before = v;
        }
        EXPECT_GT(first.persists, 1) << "the window was crossed";
    }  // crash: nothing but the file survives

    // The wall clock is now five minutes behind the old values.
    const uint64_t set_back = wall - 5 * 60 * 1000;
    ASSERT_LT(pack(set_back, 0), max_before) << "a clock starting from scratch would go back";

    Instance second(path_, 2000);
    uint64_t prev = 0;
    for (int i = 0; i < 200000; ++i) {  // enough for several counter carries
        uint64_t v = second.tick(set_back + i / 1000);
        ASSERT_GT(v, max_before) << "event " << i << " after the restart";
        ASSERT_GT(v, prev);
        prev = v;
    }
    // 200,000 values on one stalled millisecond need at least 3 carries.
    EXPECT_GE(ms_of(prev), ms_of(max_before) + 3);

    // And a second restart (no further set-back) is above the second run too.
    Instance third(path_, 2000);
    EXPECT_GT(third.tick(set_back), prev);
}

// ---------------------------------------------------------------------------
// Concurrency

TEST(ClockConcurrency, ThreadsSharingOneStateNeverIssueTheSameValue) {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 200000;
    ClockState s;
    set(s, 0, causal::system_wall_ms() + 3600 * 1000);

    std::vector<std::vector<uint64_t>> issued(kThreads);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<uint64_t> waits{0};
    std::atomic<int> unexpected{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::vector<uint64_t>& out = issued[t];
            out.reserve(kPerThread);
            ready.fetch_add(1);
            while (!go.load()) std::this_thread::yield();
            while (out.size() < static_cast<size_t>(kPerThread)) {
                Tick tick = advance(s, causal::system_wall_ms(), std::nullopt, kMaxOffset);
                switch (tick.status) {
                    case TickStatus::Issued: out.push_back(tick.wall); break;
                    case TickStatus::WaitForWallMs:
                        waits.fetch_add(1);
                        while (causal::system_wall_ms() <= tick.ms) std::this_thread::yield();
                        break;
                    default: unexpected.fetch_add(1); return;
                }
            }
        });
    }
    while (ready.load() < kThreads) std::this_thread::yield();
    go.store(true);
    for (auto& th : threads) th.join();
    ASSERT_EQ(unexpected.load(), 0);

    std::vector<uint64_t> all;
    for (int t = 0; t < kThreads; ++t) {
        ASSERT_EQ(issued[t].size(), static_cast<size_t>(kPerThread));
        for (size_t i = 1; i < issued[t].size(); ++i)
            ASSERT_LT(issued[t][i - 1], issued[t][i]) << "thread " << t << " at " << i;
        all.insert(all.end(), issued[t].begin(), issued[t].end());
    }
    std::sort(all.begin(), all.end());
    auto dup = std::adjacent_find(all.begin(), all.end());
    EXPECT_EQ(dup, all.end()) << "value issued twice: " << causal::to_string(Hlc{*dup});
    // The shared state ends on the largest value anyone got.
    EXPECT_EQ(s.last.load(), all.back());
    std::cout << "[          ] " << all.size() << " values, " << waits.load()
              << " waits for a full counter\n";
}

}  // namespace
