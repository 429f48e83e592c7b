// An open-loop load schedule and the verdict on a run against it.
//
// Open loop: every message has an intended send time fixed before the run
// (message j at j / rate seconds), whatever happens to the ones before it. A
// writer that falls behind sends late, and the lateness counts in every
// latency measured from the intended time, instead of slowing the schedule
// down and hiding the queue (coordinated omission). The rate reported is the
// one the clock saw, and a run that could not keep to its schedule says so.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstddef>
#include <string>
#include <vector>

namespace causal::probe {

struct Schedule {
    double rate = 0;     // messages per second, all writers together
    double seconds = 0;  // how long the schedule runs
    size_t writers = 1;  // messages go to writers in turn (j % writers)

    size_t messages() const { return rate <= 0 || seconds <= 0 ? 0 : static_cast<size_t>(rate * seconds + 0.5); }
    // The k-th message of writer w is message k * writers + w.
    size_t message(size_t writer, size_t k) const { return k * writers + writer; }
    size_t messages_of(size_t writer) const {
        const size_t m = messages();
        return writer < m ? (m - writer + writers - 1) / writers : 0;
    }
    // When message j is meant to be sent, after the start.
    std::chrono::nanoseconds intended(size_t j) const {
        return std::chrono::nanoseconds(static_cast<long long>(static_cast<double>(j) / rate * 1e9));
    }
};

// How far behind a run may end and still count as keeping up: one percent
// of the schedule, at least 100 ms (a commit or two at the end).
inline double allowed_overrun_seconds(const Schedule& s) { return std::max(0.1, s.seconds * 0.01); }

struct Verdict {
    double achieved_rate = 0;  // acknowledged messages / seconds from start to the last acknowledgement
    bool kept_up = false;
    std::string why;  // when it did not
};

// `taken_seconds`: from the schedule's start to the last acknowledgement.
// `accounted`: messages not acknowledged for a reason reported elsewhere (a
// failed write, a region that went away), which are not counted unsent.
inline Verdict judge(const Schedule& s, size_t acknowledged, size_t accounted, double taken_seconds) {
    Verdict v;
    const size_t unsent = s.messages() - std::min(s.messages(), acknowledged + accounted);
    v.achieved_rate = taken_seconds > 0 ? static_cast<double>(acknowledged) / std::max(taken_seconds, s.seconds) : 0;
    if (unsent > 0) {
        v.why = std::to_string(unsent) + " of " + std::to_string(s.messages()) + " messages were never sent";
    } else if (taken_seconds > s.seconds + allowed_overrun_seconds(s)) {
        char text[160];
        std::snprintf(text, sizeof text, "a %.1f s schedule took %.1f s to write", s.seconds, taken_seconds);
        v.why = text;
    } else {
        v.kept_up = true;
    }
    return v;
}

// The p-quantile of sorted values (nearest rank), 0 when there are none.
inline double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())))];
}

}  // namespace causal::probe
