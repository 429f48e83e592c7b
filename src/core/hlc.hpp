// The hybrid logical clock value: what it is, how it orders, how it is
// written. PostgreSQL-free; the extension stores this struct as the datum of
// causal.hlc, so its layout is part of the on-disk format.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "error.hpp"

namespace causal {

struct Hlc {
    // physical milliseconds since the Unix epoch in the high 48 bits, the
    // logical counter in the low 16: one unsigned compare orders both, which
    // is what makes the clock's CAS and the sort's abbreviated key cheap.
    uint64_t wall = 0;
    uint16_t node = 0;
    // Always zero: btree deduplication compares datums bytewise.
    uint16_t reserved[3] = {0, 0, 0};

    static constexpr uint32_t kMaxLogical = 0xFFFF;
    static constexpr uint64_t kMaxPhysicalMs = (uint64_t{1} << 48) - 1;
    static constexpr uint32_t kMaxNode = 0xFFFF;

    // The one statement of the bit layout of `wall`; the clock's shared
    // state holds a bare wall and unpacks it with these too.
    static constexpr int kLogicalBits = 16;
    static constexpr uint64_t pack(uint64_t physical_ms, uint32_t logical) {
        return (physical_ms << kLogicalBits) | logical;
    }
    static constexpr uint64_t physical_ms_of(uint64_t wall) { return wall >> kLogicalBits; }
    static constexpr uint32_t logical_of(uint64_t wall) { return static_cast<uint32_t>(wall & kMaxLogical); }
    constexpr uint64_t physical_ms() const { return physical_ms_of(wall); }
    constexpr uint32_t logical() const { return logical_of(wall); }

    // Validating constructor for values that come from users; throws
    // Error{OutOfRange} naming the offending part.
    static Hlc from_parts(int64_t physical_ms, int64_t logical, int64_t node);
};

static_assert(sizeof(Hlc) == 16, "causal.hlc is declared INTERNALLENGTH = 16");

inline int compare(const Hlc& a, const Hlc& b) {
    if (a.wall != b.wall) return a.wall < b.wall ? -1 : 1;
    if (a.node != b.node) return a.node < b.node ? -1 : 1;
    return 0;
}
inline bool operator==(const Hlc& a, const Hlc& b) { return compare(a, b) == 0; }
inline bool operator!=(const Hlc& a, const Hlc& b) { return compare(a, b) != 0; }
inline bool operator<(const Hlc& a, const Hlc& b) { return compare(a, b) < 0; }
inline bool operator<=(const Hlc& a, const Hlc& b) { return compare(a, b) <= 0; }
inline bool operator>(const Hlc& a, const Hlc& b) { return compare(a, b) > 0; }
inline bool operator>=(const Hlc& a, const Hlc& b) { return compare(a, b) >= 0; }

// A 64-bit key that never orders two values against their order, for the
// first pass of a sort (PostgreSQL's abbreviated keys): 42 bits of
// milliseconds since 2020 (until 2159), the 16-bit counter, the node id
// capped at 63. For nodes below 63 in that era equal keys mean equal values,
// so the full comparison never runs; outside it, keys tie (all zeros before
// 2020, all ones after) and the full comparison decides.
uint64_t abbreviated_key(const Hlc& value);

// Canonical text form: "<physical_ms>.<logical, 5 digits>@<node>", e.g.
// "1732590000123.00042@7". Zero-padding the counter keeps the text readable
// as a decimal that sorts like the value within one node.
constexpr size_t kHlcTextMax = 15 + 1 + 5 + 1 + 5 + 1;
size_t format(const Hlc& value, char (&out)[kHlcTextMax]);
std::string to_string(const Hlc& value);

// Accepts exactly the canonical form (no leading zeros, so one value has one
// text), with optional surrounding blanks. Throws Error{InvalidText} for
// anything that is not of that shape and Error{OutOfRange} for a part that
// does not fit.
Hlc parse(std::string_view text);

// Binary form (COPY BINARY, binary replication, and the bytes the hash
// functions hash, so that a value hashes alike on every machine): the packed
// word, then the node id, both in network byte order. Every 10 bytes are a
// value; parse_binary throws Error{InvalidBinary} for any other length.
constexpr size_t kHlcBinarySize = sizeof(uint64_t) + sizeof(uint16_t);
std::array<uint8_t, kHlcBinarySize> binary(const Hlc& value);
Hlc parse_binary(const uint8_t* bytes, size_t size);

// CockroachDB's DECIMAL form of an HLC timestamp: wall-clock nanoseconds, a
// dot, the logical counter as ten digits. The node id is not part of it.
constexpr size_t kCockroachDecimalMax = 64;
size_t to_cockroach_decimal(const Hlc& value, char (&out)[kCockroachDecimalMax]);

}  // namespace causal
