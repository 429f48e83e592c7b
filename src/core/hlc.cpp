#include "hlc.hpp"

#include <cstdio>

namespace causal {

namespace {

constexpr const char* kCanonicalForm =
    "An hlc is written <physical_ms>.<logical as 5 digits>@<node>, for example "
    "\"1732590000123.00042@7\".";

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

[[noreturn]] void throw_syntax(std::string_view text) {
    throw Error(ErrorKind::InvalidText,
                "invalid input syntax for type hlc: \"" + std::string(text) + "\"",
                kCanonicalForm);
}

[[noreturn]] void throw_out_of_range(const std::string& what, const std::string& detail) {
    throw Error(ErrorKind::OutOfRange, "hlc " + what + " out of range", detail);
}

// Value of a run of decimal digits, or `limit + 1` when it exceeds limit.
uint64_t digits_value(std::string_view digits, uint64_t limit) {
    uint64_t value = 0;
    for (char c : digits) {
        value = value * 10 + static_cast<uint64_t>(c - '0');
        if (value > limit) return limit + 1;
    }
    return value;
}

}  // namespace

Hlc Hlc::from_parts(int64_t physical_ms, int64_t logical, int64_t node) {
    if (physical_ms < 0 || static_cast<uint64_t>(physical_ms) > kMaxPhysicalMs)
        throw_out_of_range("physical time",
                           "physical_ms is " + std::to_string(physical_ms) +
                               "; it must be between 0 and " + std::to_string(kMaxPhysicalMs) +
                               " (48 bits of milliseconds since 1970-01-01).");
    if (logical < 0 || logical > kMaxLogical)
        throw_out_of_range("logical counter", "logical is " + std::to_string(logical) +
                                                  "; it must be between 0 and 65535.");
    if (node < 0 || node > kMaxNode)
        throw_out_of_range("node id",
                           "node is " + std::to_string(node) + "; it must be between 0 and 65535.");
    Hlc value;
    value.wall = pack(static_cast<uint64_t>(physical_ms), static_cast<uint32_t>(logical));
    value.node = static_cast<uint16_t>(node);
    return value;
}

uint64_t abbreviated_key(const Hlc& value) {
    constexpr uint64_t kEraStartMs = 1577836800000;  // 2020-01-01T00:00:00Z
    constexpr int kNodeBits = 6, kLogicalBits = 16, kPhysicalBits = 64 - kLogicalBits - kNodeBits;
    constexpr uint64_t kMaxEraMs = (uint64_t{1} << kPhysicalBits) - 1;
    constexpr uint64_t kMaxNode = (uint64_t{1} << kNodeBits) - 1;
    const uint64_t ms = value.physical_ms();
    if (ms < kEraStartMs) return 0;
    if (ms - kEraStartMs > kMaxEraMs) return ~uint64_t{0};
    const uint64_t node = value.node < kMaxNode ? value.node : kMaxNode;
    return (ms - kEraStartMs) << (kLogicalBits + kNodeBits) |
           uint64_t{value.logical()} << kNodeBits | node;
}

size_t format(const Hlc& value, char (&out)[kHlcTextMax]) {
    int n = std::snprintf(out, sizeof out, "%llu.%05u@%u",
                          static_cast<unsigned long long>(value.physical_ms()), value.logical(),
                          static_cast<unsigned>(value.node));
    return static_cast<size_t>(n);
}

std::string to_string(const Hlc& value) {
    char buf[kHlcTextMax];
    return std::string(buf, format(value, buf));
}

Hlc parse(std::string_view text) {
    size_t i = 0, end = text.size();
    while (i < end && is_blank(text[i])) ++i;
    while (end > i && is_blank(text[end - 1])) --end;

    // A run of digits without a leading zero (but "0" itself).
    auto digit_run = [&](size_t from) {
        size_t to = from;
        while (to < end && is_digit(text[to])) ++to;
        if (to - from > 1 && text[from] == '0') throw_syntax(text);
        return to;
    };
    size_t physical_end = digit_run(i);
    if (physical_end == i || physical_end >= end || text[physical_end] != '.') throw_syntax(text);
    size_t logical_begin = physical_end + 1;
    size_t logical_end = logical_begin;  // exactly five digits, zeros included
    while (logical_end < end && is_digit(text[logical_end])) ++logical_end;
    if (logical_end - logical_begin != 5 || logical_end >= end || text[logical_end] != '@')
        throw_syntax(text);
    size_t node_begin = logical_end + 1;
    size_t node_end = digit_run(node_begin);
    if (node_end == node_begin || node_end != end) throw_syntax(text);

    uint64_t physical = digits_value(text.substr(i, physical_end - i), Hlc::kMaxPhysicalMs);
    uint64_t logical =
        digits_value(text.substr(logical_begin, logical_end - logical_begin), Hlc::kMaxLogical);
    uint64_t node = digits_value(text.substr(node_begin, node_end - node_begin), Hlc::kMaxNode);
    if (physical > Hlc::kMaxPhysicalMs || logical > Hlc::kMaxLogical || node > Hlc::kMaxNode)
        throw Error(ErrorKind::OutOfRange,
                    "value out of range for type hlc: \"" + std::string(text) + "\"",
                    "physical_ms must be at most " + std::to_string(Hlc::kMaxPhysicalMs) +
                        ", logical and node at most 65535.");
    return Hlc::from_parts(static_cast<int64_t>(physical), static_cast<int64_t>(logical),
                           static_cast<int64_t>(node));
}

std::array<uint8_t, kHlcBinarySize> binary(const Hlc& value) {
    std::array<uint8_t, kHlcBinarySize> out{};
    for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(value.wall >> (56 - 8 * i));
    out[8] = static_cast<uint8_t>(value.node >> 8);
    out[9] = static_cast<uint8_t>(value.node);
    return out;
}

Hlc parse_binary(const uint8_t* bytes, size_t size) {
    if (size != kHlcBinarySize)
        throw Error(ErrorKind::InvalidBinary,
                    "invalid binary hlc: expected " + std::to_string(kHlcBinarySize) + " bytes, got " +
                        std::to_string(size));
    Hlc value;
    for (int i = 0; i < 8; ++i) value.wall = value.wall << 8 | bytes[i];
    value.node = static_cast<uint16_t>(bytes[8] << 8 | bytes[9]);
    return value;
}

size_t to_cockroach_decimal(const Hlc& value, char (&out)[kCockroachDecimalMax]) {
    // 2^48 ms in nanoseconds is above 2^64: print the millisecond part and
    // six zeros instead of multiplying, so nothing can overflow.
    int n = value.physical_ms() == 0
                ? std::snprintf(out, sizeof out, "0.%010u", value.logical())
                : std::snprintf(out, sizeof out, "%llu000000.%010u",
                                static_cast<unsigned long long>(value.physical_ms()),
                                value.logical());
    return static_cast<size_t>(n);
}

}  // namespace causal
