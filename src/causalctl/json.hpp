// Just enough JSON for causalctl --json: values built as text, escaped right.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace causalctl::json {

inline std::string string(const std::string& value) {
    std::string out = "\"";
    for (unsigned char c : value) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20) {
                    char buffer[8];
                    std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
                    out += buffer;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}
inline std::string number(long long value) { return std::to_string(value); }
inline std::string number(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.3f", value);
    return buffer;
}
inline std::string boolean(bool value) { return value ? "true" : "false"; }
inline std::string null() { return "null"; }
template <typename T, typename F>
std::string maybe(const std::optional<T>& value, F render) {
    return value ? render(*value) : null();
}

// Members in the order given.
class Object {
public:
    Object& add(const std::string& key, std::string rendered) {
        members_.emplace_back(key, std::move(rendered));
        return *this;
    }
    // Every member of `other`, after these.
    Object& add(const Object& other) {
        members_.insert(members_.end(), other.members_.begin(), other.members_.end());
        return *this;
    }
    std::string str() const {
        std::string out = "{";
        for (size_t i = 0; i < members_.size(); ++i)
            out += (i ? ", " : "") + string(members_[i].first) + ": " + members_[i].second;
        return out + "}";
    }

private:
    std::vector<std::pair<std::string, std::string>> members_;
};

inline std::string array(const std::vector<std::string>& rendered) {
    std::string out = "[";
    for (size_t i = 0; i < rendered.size(); ++i) out += (i ? ", " : "") + rendered[i];
    return out + "]";
}

}  // namespace causalctl::json
