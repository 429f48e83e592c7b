#include "copies.hpp"

#include <algorithm>

namespace causal::copies {

namespace {

std::optional<Hlc> earliest(const std::optional<Hlc>& a, const std::optional<Hlc>& b) {
    if (!a) return b;
    if (!b) return a;
    return compare(*a, *b) <= 0 ? a : b;
}

// A side's deletion that counts, and a fenced one's, which does not.
std::optional<Hlc> deletion(const Names& side) { return side.deletion_fenced ? std::nullopt : side.deleted_at; }
std::optional<Hlc> fenced_deletion(const Names& side) {
    return side.deletion_fenced ? side.deleted_at : std::nullopt;
}

}  // namespace

Resolution resolve(const Names& stored, const Names& incoming, Hlc* out) {
    Resolution r;
    r.count = static_cast<size_t>(std::set_union(stored.hlcs, stored.hlcs + stored.count, incoming.hlcs,
                                                 incoming.hlcs + incoming.count, out, stamp_wins) -
                                  out);
    r.stamp_from_incoming = stored.count > 0 && r.count > 0 && out[0] != stored.hlcs[0];
    const bool stored_live = !stored.deleted_at, incoming_live = !incoming.deleted_at;
    if (const auto deleted = earliest(deletion(stored), deletion(incoming))) {
        // A tombstone's body is erased: once deleted, the body (who deleted:
        // written_by) comes from the tombstone whose deletion the row keeps.
        r.deleted_at = deleted;
        r.body_from_incoming = !deletion(stored) || (deletion(incoming) && compare(*deletion(incoming), *deletion(stored)) < 0);
    } else if (stored_live || incoming_live) {
        // Alive: the head copy's body if it has one, else the live one's.
        // (A fenced tombstone heading the row leaves the body of the live
        // copy that came first: copies of one msg_id are one client's
        // retries of one message, alike but for their defaults.)
        r.body_from_incoming = stored_live ? r.stamp_from_incoming && incoming_live : true;
    } else {
        // Only fenced tombstones: the earliest stays, waiting for a body.
        r.deleted_at = earliest(fenced_deletion(stored), fenced_deletion(incoming));
        r.deletion_fenced = true;
        r.body_from_incoming = r.deleted_at != stored.deleted_at;
    }
    r.changes = r.count != stored.count || r.deleted_at != stored.deleted_at;
    return r;
}

Copies combine(const Copies& a, const Copies& b) {
    Copies out;
    out.hlcs.resize(a.hlcs.size() + b.hlcs.size());
    const Resolution r = resolve(a.names(), b.names(), out.hlcs.data());
    out.hlcs.resize(r.count);
    out.deleted_at = r.deleted_at;
    out.deletion_fenced = r.deletion_fenced;
    return out;
}

}  // namespace causal::copies
