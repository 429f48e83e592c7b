// causal-probe's open-loop schedule and its verdict (src/probe/open_loop.hpp):
// every message is scheduled once, and a writer slower than its schedule is
// caught, with the rate the clock saw, not the one it was asked for.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "../../src/probe/open_loop.hpp"

using causal::probe::judge;
using causal::probe::percentile;
using causal::probe::Schedule;

namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// One writer connection, closed loop inside, open loop outside: it sends each
// message at its intended time or, when the previous one is still running,
// as soon as that is done. Returns when the last one finished, and fills the
// latencies counted from the intended times.
double run_one_writer(const Schedule& s, double service_seconds, std::vector<double>& latency) {
    double free_at = 0;
    for (size_t j = 0; j < s.messages(); ++j) {
        const double intended = seconds(s.intended(j));
        const double done = std::max(intended, free_at) + service_seconds;
        latency.push_back(done - intended);
        free_at = done;
    }
    std::sort(latency.begin(), latency.end());
    return free_at;
}

}  // namespace

TEST(OpenLoopSchedule, EveryMessageGoesToOneWriterOnce) {
    for (double rate : {1.0, 7.0, 100.0, 2999.0})
        for (double secs : {0.5, 1.0, 10.0})
            for (size_t writers : {1, 2, 3, 5}) {
                const Schedule s{rate, secs, writers};
                std::vector<int> seen(s.messages(), 0);
                for (size_t w = 0; w < writers; ++w)
                    for (size_t k = 0; k < s.messages_of(w); ++k) {
                        const size_t j = s.message(w, k);
                        ASSERT_LT(j, s.messages());
                        ++seen[j];
                    }
                EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }))
                    << rate << "/s for " << secs << " s over " << writers << " writers";
            }
}

TEST(OpenLoopSchedule, IntendedTimesAreEvenAndWithinTheSchedule) {
    const Schedule s{3000, 10, 3};
    ASSERT_EQ(s.messages(), 30000u);
    for (size_t j = 1; j < s.messages(); ++j)
        ASSERT_NEAR(seconds(s.intended(j) - s.intended(j - 1)), 1.0 / 3000, 1e-9);
    EXPECT_LT(seconds(s.intended(s.messages() - 1)), 10.0);
}

TEST(OpenLoopVerdict, AWriterThatKeepsUpIsBelievedAtItsRate) {
    const Schedule s{1000, 10, 1};
    std::vector<double> latency;
    const double taken = run_one_writer(s, 0.0005, latency);
    const auto v = judge(s, s.messages(), 0, taken);
    EXPECT_TRUE(v.kept_up) << v.why;
    EXPECT_NEAR(v.achieved_rate, 1000, 1);
    EXPECT_NEAR(percentile(latency, 0.99), 0.0005, 1e-9);
}

// The case: a 10 s schedule that took 16 s to write. The rate is the
// clock's, and the latency from the intended time shows the queue.
TEST(OpenLoopVerdict, AWriterSlowerThanItsScheduleIsCaught) {
    const Schedule s{4000, 10, 1};
    std::vector<double> latency;
    const double service = 1.6 / 4000;  // 2,500 messages/s at most
    const double taken = run_one_writer(s, service, latency);
    ASSERT_NEAR(taken, 16, 0.01);
    const auto v = judge(s, s.messages(), 0, taken);
    EXPECT_FALSE(v.kept_up);
    EXPECT_NE(v.why.find("took 16.0 s"), std::string::npos) << v.why;
    EXPECT_NEAR(v.achieved_rate, 2500, 1);
    // The last message waited for all the ones before it: about 6 s.
    EXPECT_GT(latency.back(), 5.9);
    EXPECT_GT(percentile(latency, 0.50), 2.9);
}

TEST(OpenLoopVerdict, MessagesNeverSentMeanItFellBehind) {
    const Schedule s{100, 10, 2};
    const auto v = judge(s, 900, 0, 10.05);
    EXPECT_FALSE(v.kept_up);
    EXPECT_NE(v.why.find("100 of 1000"), std::string::npos) << v.why;
    EXPECT_TRUE(judge(s, 990, 10, 10.05).kept_up) << "failed writes are reported as failures, not as unsent";
}

TEST(OpenLoopVerdict, EndingWithinOnePercentIsKeepingUp) {
    const Schedule s{100, 20, 1};
    EXPECT_TRUE(judge(s, 2000, 0, 20.19).kept_up);
    EXPECT_FALSE(judge(s, 2000, 0, 20.21).kept_up);
}
