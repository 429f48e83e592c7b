// The regions causalctl works on, and how each reaches the others.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace causalctl {

struct Region {
    std::string name;
    std::string dsn;  // how causalctl reaches it
};

class Mesh {
public:
    // specs: "NAME=DSN" regions and "FROM:TO=DSN" links (the DSN region TO
    // subscribes to FROM with, e.g. through a proxy); throws
    // std::invalid_argument on a malformed or repeated one.
    Mesh(const std::vector<std::string>& region_specs, const std::vector<std::string>& link_specs);

    const std::vector<Region>& regions() const { return regions_; }
    const Region* find(const std::string& name) const;
    // The DSN `to` subscribes to `from` with: the link's, or `from`'s own.
    std::string link_dsn(const std::string& from, const std::string& to) const;
    // Strictly more than half of the regions.
    size_t majority() const { return regions_.size() / 2 + 1; }

private:
    std::vector<Region> regions_;
    std::map<std::pair<std::string, std::string>, std::string> links_;
};

// Names of the objects of one link: its subscription in `to` and its slot in `from`.
std::string link_name(const std::string& from, const std::string& to);

}  // namespace causalctl
