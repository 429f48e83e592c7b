// The names of a mesh link's objects: its subscription in the region that
// receives, its slot in the region that sends. The one statement of them:
// causalctl makes and finds them with it, the relay worker finds the
// subscription to a peer with it, and SQL asks it through
// causal.link_name() (causal.links, the monitoring queries,
// causal.await_replicated()). PostgreSQL-free.
#pragma once

#include <string>

namespace causal {

// PostgreSQL keeps the first 63 bytes of a name (NAMEDATALEN - 1) and
// drops the rest when it creates an object, so a longer name is that long.
constexpr size_t kMaxNameBytes = 63;

// An identifier made of [a-z0-9_] from a region name, byte by byte: ASCII
// letters lower-cased, digits kept, every other byte (those of a non-ASCII
// letter too) '_'. Not <cctype>: its answer for bytes above 127 depends on
// the locale, which in a backend is the database's.
inline std::string object_name(const std::string& region) {
    std::string out;
    out.reserve(region.size());
    for (char c : region) {
        if (c >= 'A' && c <= 'Z')
            out += static_cast<char>(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out += c;
        else
            out += '_';
    }
    return out;
}

// The link along which `to` receives what `from` writes, as PostgreSQL
// keeps the name.
inline std::string link_name(const std::string& from, const std::string& to) {
    std::string name = "causal_" + object_name(from) + "_to_" + object_name(to);
    if (name.size() > kMaxNameBytes) name.resize(kMaxNameBytes);
    return name;
}

}  // namespace causal
