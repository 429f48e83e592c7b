// The regions causalctl works on, and how each reaches the others.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/fencing.hpp"
#include "core/links.hpp"

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
    std::vector<std::string> names() const;
    const Region* find(const std::string& name) const;
    // The DSN `to` subscribes to `from` with: the link's, or `from`'s own.
    std::string link_dsn(const std::string& from, const std::string& to) const;

private:
    std::vector<Region> regions_;
    std::map<std::pair<std::string, std::string>, std::string> links_;
};

// The rules of src/core that causalctl applies, not restates.
using causal::link_name;
using causal::object_name;
using causal::fencing::cut_off;
using causal::fencing::heard_within;
using causal::fencing::majority;

// The names of every link between `regions`, both ways: causal::link_name,
// which the slots and subscriptions of the mesh are matched by, exactly.
std::vector<std::string> link_names(const std::vector<std::string>& regions);

// What every link subscribes to, as pg_subscription.subpublications lists
// them: pg_causal's own tables, each region's own messages, and the first
// copy of every message table (causal.mesh_publication() makes them).
inline const std::string kMeshPublications = "causal_mesh, causal_messages, causal_copy";

}  // namespace causalctl
