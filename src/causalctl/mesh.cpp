#include "mesh.hpp"

#include <stdexcept>

#include "pg.hpp"

namespace causalctl {

Mesh::Mesh(const std::vector<std::string>& region_specs, const std::vector<std::string>& link_specs) {
    for (const auto& spec : region_specs) {
        auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
            throw std::invalid_argument("--region wants NAME=DSN, not \"" + spec + "\"");
        Region region{spec.substr(0, eq), spec.substr(eq + 1)};
        if (find(region.name)) throw std::invalid_argument("region \"" + region.name + "\" given twice");
        for (const auto& other : regions_)
            if (link_name(other.name, "") == link_name(region.name, ""))
                throw std::invalid_argument("regions \"" + other.name + "\" and \"" + region.name +
                                            "\" would share object names");
        regions_.push_back(std::move(region));
    }
    for (const auto& spec : link_specs) {
        auto eq = spec.find('=');
        auto colon = spec.find(':');
        if (eq == std::string::npos || colon == std::string::npos || colon > eq)
            throw std::invalid_argument("--link wants FROM:TO=DSN, not \"" + spec + "\"");
        std::string from = spec.substr(0, colon), to = spec.substr(colon + 1, eq - colon - 1);
        if (!find(from) || !find(to) || from == to)
            throw std::invalid_argument("--link " + from + ":" + to + " names no pair of distinct regions");
        links_[{from, to}] = spec.substr(eq + 1);
    }
}

std::vector<std::string> Mesh::names() const {
    std::vector<std::string> names;
    for (const auto& region : regions_) names.push_back(region.name);
    return names;
}

std::vector<std::string> link_names(const std::vector<std::string>& regions) {
    std::vector<std::string> names;
    for (const auto& from : regions)
        for (const auto& to : regions)
            if (from != to) names.push_back(link_name(from, to));
    return names;
}

const Region* Mesh::find(const std::string& name) const {
    for (const auto& region : regions_)
        if (region.name == name) return &region;
    return nullptr;
}

std::string Mesh::link_dsn(const std::string& from, const std::string& to) const {
    auto link = links_.find({from, to});
    return link != links_.end() ? link->second : find(from)->dsn;
}

}  // namespace causalctl
