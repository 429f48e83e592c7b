// Numbers read as text, from a server or from a command line, strictly: all
// of the text is the number, or it is refused. std::stoll reads "12abc" as
// 12 and " 12" as 12, std::stod reads "nan"; a value that is not what it
// claims to be is an error here, said with the text it was. PostgreSQL-free.
#pragma once

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

#include "error.hpp"

namespace causal {

namespace numbers_detail {

inline std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

inline std::string shown(double value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    return ec == std::errc() ? std::string(buffer, end) : std::string("?");
}

}  // namespace numbers_detail

// All of `text` as a base-10 integer in [min, max]: an optional '-', then
// digits, nothing else (no sign '+', no spaces, no fraction). Throws
// causal::Error (InvalidText, OutOfRange) saying what the text was.
inline long long parse_integer(std::string_view text, long long min = std::numeric_limits<long long>::min(),
                               long long max = std::numeric_limits<long long>::max()) {
    using numbers_detail::quoted;
    if (text.empty()) throw Error(ErrorKind::InvalidText, "an empty string is not an integer");
    long long value = 0;
    const char* end = text.data() + text.size();
    auto [stop, ec] = std::from_chars(text.data(), end, value, 10);
    if (ec == std::errc::result_out_of_range)
        throw Error(ErrorKind::OutOfRange, quoted(text) + " is out of range (" + std::to_string(min) + " to " +
                                               std::to_string(max) + ")");
    if (ec != std::errc() || stop != end) throw Error(ErrorKind::InvalidText, quoted(text) + " is not an integer");
    if (value < min || value > max)
        throw Error(ErrorKind::OutOfRange, quoted(text) + " is out of range (" + std::to_string(min) + " to " +
                                               std::to_string(max) + ")");
    return value;
}

// All of `text` as a finite decimal number in [min, max]: what PostgreSQL
// prints for float8 and numeric ("1.5", "-0.25", "1e-05"), and what a person
// types for seconds ("2", "0.5"). No "NaN", no "Infinity", no hex, no sign
// '+', no spaces. Throws causal::Error (InvalidText, OutOfRange).
inline double parse_decimal(std::string_view text, double min = -std::numeric_limits<double>::max(),
                            double max = std::numeric_limits<double>::max()) {
    using numbers_detail::quoted;
    using numbers_detail::shown;
    if (text.empty()) throw Error(ErrorKind::InvalidText, "an empty string is not a number");
    double value = 0;
    const char* end = text.data() + text.size();
    auto [stop, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
    if (ec == std::errc::result_out_of_range)
        throw Error(ErrorKind::OutOfRange, quoted(text) + " is out of range (" + shown(min) + " to " + shown(max) + ")");
    if (ec != std::errc() || stop != end || !std::isfinite(value))
        throw Error(ErrorKind::InvalidText, quoted(text) + " is not a number");
    if (value < min || value > max)
        throw Error(ErrorKind::OutOfRange, quoted(text) + " is out of range (" + shown(min) + " to " + shown(max) + ")");
    return value;
}

}  // namespace causal
