#include "copies.hpp"

namespace causal::copies {

namespace {

std::optional<Hlc> earliest(const std::optional<Hlc>& a, const std::optional<Hlc>& b) {
    if (!a) return b;
    if (!b) return a;
    return compare(*a, *b) <= 0 ? a : b;
}

}  // namespace

Copy combine(const Copy& a, const Copy& b) {
    return Copy{stamp_wins(b.hlc, a.hlc) ? b.hlc : a.hlc, earliest(a.deleted_at, b.deleted_at)};
}

Resolution resolve(const Copy& stored, const Copy& incoming) {
    const Copy result = combine(stored, incoming);
    Resolution r;
    r.changes = result != stored;
    r.stamp_from_incoming = result.hlc != stored.hlc;
    r.deleted_at = result.deleted_at;
    // A tombstone's body is erased: once deleted, the body comes from a
    // tombstone, the stored one if it is one.
    r.body_from_incoming = result.deleted_at ? !stored.deleted_at : r.stamp_from_incoming;
    return r;
}

}  // namespace causal::copies
