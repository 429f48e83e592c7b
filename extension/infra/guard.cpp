#include "infra/guard.hpp"



namespace causal::pg {

int sqlstate_of(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::InvalidText: return ERRCODE_INVALID_TEXT_REPRESENTATION;
        case ErrorKind::OutOfRange: return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
        case ErrorKind::InvalidBinary: return ERRCODE_INVALID_BINARY_REPRESENTATION;
        case ErrorKind::InvalidParameter: return ERRCODE_INVALID_PARAMETER_VALUE;
        case ErrorKind::NullValue: return ERRCODE_NULL_VALUE_NOT_ALLOWED;
        case ErrorKind::LimitExceeded: return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
        case ErrorKind::Io: return ERRCODE_IO_ERROR;
        case ErrorKind::Internal: break;
    }
    return ERRCODE_INTERNAL_ERROR;
}

void CaughtError::set(int code, const char* msg, const char* det) {
    sqlstate = code;
    snprintf(message, sizeof message, "%s", msg);
    snprintf(detail, sizeof detail, "%s", det);
}

void CaughtError::raise(int elevel) const {
    ereport(elevel, (errcode(sqlstate), errmsg("%s", message),
                    detail[0] ? errdetail("%s", detail) : 0));
    pg_unreachable();
}

}  // namespace causal::pg
