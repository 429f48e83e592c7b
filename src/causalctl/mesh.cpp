#include "mesh.hpp"

#include <map>
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
        regions_.push_back(std::move(region));
    }
    // Two links with one name would share a slot and a subscription. Names
    // meet when regions differ only in bytes object_name() maps to '_', when
    // one name's "_to_" lines up with another's ("a_to_b" to "c", "a" to
    // "b_to_c"), or past the 63 bytes PostgreSQL keeps: every pair is
    // compared, as PostgreSQL would name it.
    std::map<std::string, std::pair<std::string, std::string>> named;
    for (const auto& from : regions_)
        for (const auto& to : regions_) {
            if (&from == &to) continue;
            auto [it, fresh] = named.emplace(link_name(from.name, to.name), std::make_pair(from.name, to.name));
            if (!fresh)
                throw std::invalid_argument("the links " + it->second.first + " to " + it->second.second + " and " +
                                            from.name + " to " + to.name + " would share the name " + it->first +
                                            ": rename a region");
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
