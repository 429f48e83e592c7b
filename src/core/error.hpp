// The one exception type core code throws. The kind says which SQLSTATE the
// extension's glue reports; core code never sees PostgreSQL.
#pragma once

#include <stdexcept>
#include <string>

namespace causal {

enum class ErrorKind {
    InvalidText,         // 22P02
    OutOfRange,          // 22003
    InvalidBinary,       // 22P03
    InvalidParameter,    // 22023
    NullValue,           // 22004
    LimitExceeded,       // 54000
    Io,                  // 58030
    Internal,            // XX000
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string message, std::string detail = {})
        : std::runtime_error(std::move(message)), kind_(kind), detail_(std::move(detail)) {}

    ErrorKind kind() const noexcept { return kind_; }
    const std::string& detail() const noexcept { return detail_; }

private:
    ErrorKind kind_;
    std::string detail_;
};

}  // namespace causal
