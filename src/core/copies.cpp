#include "copies.hpp"

#include <algorithm>

namespace causal::copies {

namespace {

std::optional<Hlc> earliest(const std::optional<Hlc>& a, const std::optional<Hlc>& b) {
    if (!a) return b;
    if (!b) return a;
    return compare(*a, *b) <= 0 ? a : b;
}

}  // namespace

Resolution resolve(const Names& stored, const Names& incoming, Hlc* out) {
    Resolution r;
    r.count = static_cast<size_t>(std::set_union(stored.hlcs, stored.hlcs + stored.count, incoming.hlcs,
                                                 incoming.hlcs + incoming.count, out, stamp_wins) -
                                  out);
    r.deleted_at = earliest(stored.deleted_at, incoming.deleted_at);
    r.changes = r.count != stored.count || r.deleted_at != stored.deleted_at;
    r.stamp_from_incoming = stored.count > 0 && r.count > 0 && out[0] != stored.hlcs[0];
    // A tombstone's body is erased: once deleted, the body comes from a
    // tombstone, the stored one if it is one.
    r.body_from_incoming = r.deleted_at ? !stored.deleted_at : r.stamp_from_incoming;
    return r;
}

Copies combine(const Copies& a, const Copies& b) {
    Copies out;
    out.hlcs.resize(a.hlcs.size() + b.hlcs.size());
    const Resolution r = resolve(a.names(), b.names(), out.hlcs.data());
    out.hlcs.resize(r.count);
    out.deleted_at = r.deleted_at;
    return out;
}

}  // namespace causal::copies
