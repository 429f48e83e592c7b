// The HLC algorithm over one shared, lock-free state word.
//
// The state lives wherever the caller puts it (PostgreSQL shared memory in
// the extension, a plain object in the unit tests). Every function here is
// noexcept and never blocks: when the clock must wait for the wall clock or
// for a larger persisted ceiling, it says so and the caller does the waiting
// or the I/O, in a frame where a PostgreSQL error may be raised.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "hlc.hpp"

namespace causal {

struct ClockState {
    // The last value issued (Hlc::wall packing). Strictly increasing.
    std::atomic<uint64_t> last{0};
    // Exclusive upper bound on the physical part of anything issued, which
    // has been made durable before it was stored here.
    std::atomic<uint64_t> ceiling_ms{0};
    // Remote timestamps refused by the max-offset guard, and the largest
    // lead of a remote timestamp over the local wall clock ever observed.
    std::atomic<uint64_t> offset_rejections{0};
    std::atomic<uint64_t> max_remote_lead_ms{0};
};

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the clock must be lock-free on the hot path");

enum class TickStatus {
    Issued,          // `wall` holds the new value
    WaitForWallMs,   // logical counter full: retry once the wall clock has passed `ms`
    NeedsCeiling,    // persist a ceiling above `ms`, then retry
    Exhausted,       // the 48-bit physical range is used up (year 10889)
};

struct Tick {
    TickStatus status;
    uint64_t wall;  // Issued: the packed value issued
    uint64_t ms;    // otherwise: the physical millisecond the clock needs
};

// One clock event at wall-clock time `now_ms`: a local/send event, or, with
// `remote`, a receive event that also moves past the remote value's packing.
//   physical' = max(physical, now_ms, remote.physical)
//   logical'  = bumped from whichever of them set physical', else 0
// On a full logical counter at the wall clock's millisecond the clock waits
// for the next one. Ahead of the wall clock (an adopted remote value, a
// restart with the clock set back) it carries into the physical part
// instead, 1 ms per 65,536 events: waiting there would take as long as the
// lead, and a client could stall every writer of a region with one dep just
// inside the max offset that carries a full counter.
Tick advance(ClockState& state, uint64_t now_ms, std::optional<uint64_t> remote,
             uint64_t max_offset_ms) noexcept;

// The max-offset guard of a receive event. A remote value whose physical time
// is more than max_offset_ms ahead of `now_ms` must not be adopted, or one
// bad clock would drag every region's clock into the future: it is counted
// and the caller ticks locally instead. Records the largest lead seen.
struct RemoteCheck {
    bool adopt;
    uint64_t lead_ms;  // how far the remote physical time is ahead (0 if behind)
};
RemoteCheck check_remote(ClockState& state, uint64_t remote_wall, uint64_t now_ms,
                         uint64_t max_offset_ms) noexcept;

// The ceiling to persist so that `needed_ms` may be issued and the clock can
// run `window_ms` on before it has to persist again.
inline uint64_t next_ceiling(uint64_t needed_ms, uint64_t now_ms, uint64_t window_ms) {
    return (needed_ms > now_ms ? needed_ms : now_ms) + window_ms;
}

// Where a restarted clock begins: above every value issued before the
// restart, which were all below the persisted ceiling.
inline uint64_t restart_floor(uint64_t persisted_ceiling_ms) {
    return Hlc::pack(persisted_ceiling_ms, 0);
}

// Raises `target` to at least `value`.
inline void atomic_max(std::atomic<uint64_t>& target, uint64_t value) noexcept {
    uint64_t seen = target.load(std::memory_order_relaxed);
    while (seen < value && !target.compare_exchange_weak(seen, value, std::memory_order_acq_rel)) {
    }
}

// The wall clock in milliseconds since the Unix epoch (CLOCK_REALTIME).
uint64_t system_wall_ms() noexcept;

// The persisted clock ceiling: one small file, replaced atomically and made
// durable (file and directory fsync) before write() returns. Throws Error{Io}.
class CeilingFile {
public:
    explicit CeilingFile(std::string path) : path_(std::move(path)) {}
    // The ceiling, or nothing when the file does not exist (a new instance).
    // A file that exists but cannot be read back exactly is an error: starting
    // without it could issue a value twice.
    std::optional<uint64_t> read() const;
    void write(uint64_t ceiling_ms) const;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace causal
