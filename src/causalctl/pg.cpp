#include "pg.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "core/numbers.hpp"

namespace causalctl {

namespace {

std::string trimmed(std::string message) {
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
    return message;
}

// Whether a connection string (or $PGUSER) says which login to use.
bool names_user(const std::string& dsn) {
    if (std::getenv("PGUSER") != nullptr) return true;
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
    if (error != nullptr) PQfreemem(error);
    if (options == nullptr) return true;  // malformed: libpq's own message says so
    bool named = false;
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o)
        if (std::string(o->keyword) == "user" && o->val != nullptr && *o->val != '\0') named = true;
    PQconninfoFree(options);
    return named;
}

// Seconds as a setting in milliseconds, at least 1 (0 would turn it off).
std::string milliseconds(double seconds) {
    return std::to_string(std::max(1LL, std::llround(seconds * 1000)));
}

// The error of a failed result (or of the connection) as a DbError.
DbError result_error(const std::string& region, PGconn* conn, const PGresult* raw) {
    const char* sqlstate = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = raw ? PQresultErrorMessage(raw) : "";
    if (message.empty()) message = PQerrorMessage(conn);
    return DbError(region, trimmed(message), sqlstate ? sqlstate : "");
}

bool failed(const PGresult* raw) {
    const ExecStatusType status = PQresultStatus(raw);
    return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
}

}  // namespace

long long integer_from(const std::string& region, const std::string& text, const std::string& what, long long min,
                       long long max) {
    try {
        return causal::parse_integer(text, min, max);
    } catch (const causal::Error& e) {
        throw DbError(region, what + ": " + e.what());
    }
}

double number_from(const std::string& region, const std::string& text, const std::string& what) {
    try {
        return causal::parse_decimal(text);
    } catch (const causal::Error& e) {
        throw DbError(region, what + ": " + e.what());
    }
}

Connection::Connection(std::string region, const std::string& dsn, const SessionLimits& limits)
    : region_(std::move(region)), conn_(nullptr, PQfinish) {
    // expand_dbname: the first "dbname" is the DSN itself, and libpq keeps
    // the last value of a key: the keys after it override the DSN's, so its
    // own options= or keepalives cannot loosen what follows.
    const std::string timeout = std::to_string(limits.connect_timeout_s);
    // Keepalives: a region cut off after we connected must fail a call, not
    // hang it. The options: no statement waits forever, a vote or a fence is
    // durable when acknowledged, and the search_path is pg_catalog's alone
    // (a client option outranks the database's and the role's settings):
    // causalctl runs as a superuser, and a database owner's ALTER DATABASE
    // ... SET search_path must not put its operators into these statements.
    // And SessionLimits: no lock waited for long, no transaction left open;
    // a causalctl gone while a statement runs (a table rewrite under its
    // lock) is noticed within a second, not when the statement ends.
    const std::string options =
        "-c statement_timeout=30s -c synchronous_commit=local -c search_path=pg_catalog,pg_temp"
        " -c client_connection_check_interval=1000"
        " -c lock_timeout=" + milliseconds(limits.lock_timeout_s) +
        " -c idle_in_transaction_session_timeout=" + milliseconds(limits.idle_in_transaction_s);
    const char* keys[] = {"dbname", "connect_timeout", "fallback_application_name", "keepalives",
                          "keepalives_idle", "keepalives_interval", "keepalives_count", "options", nullptr};
    const char* values[] = {dsn.c_str(), timeout.c_str(), "causalctl", "1", "5", "2", "3", options.c_str(), nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
        std::string why = "cannot connect: " + trimmed(PQerrorMessage(conn_.get()));
        if (!names_user(dsn))
            why += " (its DSN names no user=, so libpq tried the login \"" + std::string(PQuser(conn_.get())) +
                   "\": add user=... to the region's DSN)";
        throw DbError(region_, why);
    }
    // causalctl reports what it did itself; the servers' NOTICEs are noise.
    PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr);
}

Result Connection::exec(const std::string& sql, const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGresult* raw = PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    Result result(raw, region_);
    if (failed(raw)) throw result_error(region_, conn_.get(), raw);
    return result;
}

void Connection::send(const std::string& sql, const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    if (!PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                           nullptr, 0))
        throw result_error(region_, conn_.get(), nullptr);
}

Result Connection::receive() {
    // Every result of the statement, until libpq has none left: the
    // session is idle again, whether or not it failed.
    Result result(nullptr, region_);
    bool any = false, bad = false;
    std::optional<DbError> error;
    while (PGresult* raw = PQgetResult(conn_.get())) {
        const ExecStatusType status = PQresultStatus(raw);
        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
            // libpq hands out a COPY's result again until the copy ends:
            // end it (refused, or its rows read and dropped), then go on.
            PQclear(raw);
            if (status == PGRES_COPY_OUT) {
                char* row = nullptr;
                while (PQgetCopyData(conn_.get(), &row, 0) > 0) PQfreemem(row);
            } else {
                PQputCopyEnd(conn_.get(), "causalctl runs no COPY");
            }
            if (!bad) {
                bad = true;
                error.emplace(region_, "causalctl runs no COPY: it is no schema change");
            }
            continue;
        }
        if (!bad && failed(raw)) {
            bad = true;
            error.emplace(result_error(region_, conn_.get(), raw));
        }
        if (!any) result = Result(raw, region_);
        else PQclear(raw);
        any = true;
    }
    if (error) throw *error;
    if (!any) throw result_error(region_, conn_.get(), nullptr);
    return result;
}

bool Connection::in_transaction() const {
    const PGTransactionStatusType status = PQtransactionStatus(conn_.get());
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

std::string Connection::value(const std::string& sql, const Params& params) {
    Result result = exec(sql, params);
    if (result.rows() < 1 || result.is_null(0, 0)) return {};
    return result.text(0, 0);
}

std::string text_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        out += i ? ",\"" : "\"";
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

std::string quote_literal(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

}  // namespace causalctl
