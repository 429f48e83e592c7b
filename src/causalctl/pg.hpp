// A small RAII layer over libpq for causalctl: connections that close
// themselves, results that clear themselves, failures as exceptions that say
// which region failed and what the server said.
#pragma once

#include <libpq-fe.h>

#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace causalctl {

// A region could not be reached, or a statement failed there.
class DbError : public std::runtime_error {
public:
    DbError(const std::string& region, const std::string& what, std::string sqlstate = {})
        : std::runtime_error(region + ": " + what), region_(region), sqlstate_(std::move(sqlstate)) {}
    const std::string& region() const { return region_; }
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string region_;
    std::string sqlstate_;
};

// A number a region sent, read strictly (core/numbers.hpp): text that is not
// all the number, or out of range, is a DbError of that region naming
// `what`, never a number made of its first digits.
long long integer_from(const std::string& region, const std::string& text, const std::string& what,
                       long long min = std::numeric_limits<long long>::min(),
                       long long max = std::numeric_limits<long long>::max());
double number_from(const std::string& region, const std::string& text, const std::string& what);

class Result {
public:
    Result(PGresult* result, std::string region) : result_(result, PQclear), region_(std::move(region)) {}
    int rows() const { return PQntuples(result_.get()); }
    bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column); }
    std::string text(int row, int column) const { return PQgetvalue(result_.get(), row, column); }
    std::optional<std::string> maybe(int row, int column) const {
        if (is_null(row, column)) return std::nullopt;
        return text(row, column);
    }
    long long integer(int row, int column) const { return integer_from(region_, text(row, column), name(column)); }
    double number(int row, int column) const { return number_from(region_, text(row, column), name(column)); }
    bool boolean(int row, int column) const { return text(row, column) == "t"; }
    const std::string& region() const { return region_; }

private:
    std::string name(int column) const { return "column " + std::string(PQfname(result_.get(), column)); }
    std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
    std::string region_;
};

// What every session of causalctl's is held to, besides the statement
// timeout: how long it tries to reach a region, how long a statement waits
// for a lock (a waiting ACCESS EXCLUSIVE request queues every later one on
// the table behind it), and how long the server keeps a transaction open
// while causalctl says nothing (a causalctl killed, frozen or cut off must
// not hold its locks: the server ends the session, which rolls back).
struct SessionLimits {
    int connect_timeout_s = 5;
    double lock_timeout_s = 10;
    double idle_in_transaction_s = 60;
};

using Params = std::vector<std::optional<std::string>>;

class Connection {
public:
    // Throws DbError when the region cannot be reached within the limit.
    Connection(std::string region, const std::string& dsn, const SessionLimits& limits);
    const std::string& region() const { return region_; }

    // One statement, parameters as text (nullopt is NULL). Throws DbError.
    Result exec(const std::string& sql, const Params& params = {});
    std::string value(const std::string& sql, const Params& params = {});

    // The same in two steps, so that several regions work at once: send()
    // returns once the statement is on its way, receive() waits for its
    // result. Throws DbError (receive() once the server is done with it).
    void send(const std::string& sql, const Params& params = {});
    Result receive();
    // Whether a transaction is open (or failed) in this session.
    bool in_transaction() const;

private:
    std::string region_;
    std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
};

// A text[] parameter's text: every item double-quoted, so that any name is
// one element (compare with `= ANY ($1::text[])`).
std::string text_array(const std::vector<std::string>& items);

// Quotes a literal for a statement sent elsewhere (a DSN inside CREATE
// SUBSCRIPTION cannot be a parameter).
std::string quote_literal(const std::string& value);

}  // namespace causalctl
