// The names of a mesh link's objects: its subscription in the region that
// receives, its slot in the region that sends. causalctl makes them; the
// relay worker finds the subscription to a peer by them. PostgreSQL-free.
#pragma once

#include <cctype>
#include <string>

namespace causal {

// An identifier made of [a-z0-9_] from a region name.
inline std::string object_name(const std::string& region) {
    std::string out;
    for (char c : region) {
        const auto u = static_cast<unsigned char>(c);
        out += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_';
    }
    return out;
}

// The link along which `to` receives what `from` writes.
inline std::string link_name(const std::string& from, const std::string& to) {
    return "causal_" + object_name(from) + "_to_" + object_name(to);
}

}  // namespace causal
