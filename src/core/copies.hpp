// One message, several copies. A client that retries in another region, a
// relayed row and a deletion all make copies of one msg_id; each copy is
// stamped with an hlc of its own, and a client may have been told, and
// replied to, any of them. This is the rule by which they meet, the one home
// of it: the insert trigger's apply path stores by it, the causal merge
// presents by it.
//
// Storing: a region keeps every copy it has received. The row of a msg_id
// holds the stamp (hlc, deps, region, epoch) of the copy with the smallest
// hlc in its own columns and every other copy's stamp in `copies`, and is
// deleted once any copy is a tombstone. That is a union of sets, so every
// arrival order stores the same row, and no hlc a message was ever given
// stops naming it.
//
// Fenced deletions: a tombstone that a region wrote in an epoch the mesh had
// fenced (merge::fenced_deletion: the region did not know yet) deletes
// nothing, as that region's inserts of the same window are orphans rather
// than messages. A row whose body such a tombstone erased (in the deleting
// region, or where the tombstone arrived before its fence) takes the body
// back from the first live copy that arrives; a deletion by an active region
// still deletes, whatever fenced deletion came before. Whether a deletion is
// fenced is judged with the fences as they stand when a copy arrives, so a
// fence that arrives later turns a deletion applied before into one that a
// live copy undoes: the relay brings that copy (extension/mesh/relay.cpp).
//
// Presenting: the copy a history shows is chosen with the fences as well
// (presented_copy below), at read time, so that a fence arriving after the
// copies changes what every region shows alike, without rewriting rows.
//
// PostgreSQL-free.
#pragma once

#include <optional>
#include <vector>

#include "hlc.hpp"

namespace causal::copies {

// Whose stamp heads a row: the smallest hlc, in every region.
inline bool stamp_wins(const Hlc& a, const Hlc& b) { return compare(a, b) < 0; }

// What one row (or one incoming row) holds of a message: a view, for the
// trigger, which keeps its data in PostgreSQL's memory.
struct Names {
    const Hlc* hlcs;                // every copy's hlc, ascending and distinct; hlcs[0] heads the row
    size_t count;
    std::optional<Hlc> deleted_at;  // set on a tombstone
    bool deletion_fenced = false;   // ... written by a region in a fenced epoch: it deletes nothing
};

// What a region holding `stored` does when `incoming` arrives. `out` must
// have room for stored.count + incoming.count names: it gets every copy of
// both, ascending, and `count` says how many.
struct Resolution {
    bool changes = false;              // the stored row must be rewritten
    bool stamp_from_incoming = false;  // the head stamp (hlc, deps, region, epoch, conversation)
    bool body_from_incoming = false;   // the message's own columns
    std::optional<Hlc> deleted_at;     // deleted if either is, at the earliest deletion
    bool deletion_fenced = false;      // deleted_at is a fenced deletion: the row waits for its body
    size_t count = 0;
};
// The row it then holds: every copy of both (a union: associative,
// commutative, idempotent), the stamp of the smallest hlc heading it, the
// body of that copy or, once deleted, of a tombstone (whose body is erased).
// A deletion is never undone by a late copy, unless it is fenced: then the
// row is deleted only if an active region's deletion is among the copies;
// else it is alive, with a live copy's body, once one arrived; else it
// stays the fenced tombstone of the earliest fenced deletion.
Resolution resolve(const Names& stored, const Names& incoming, Hlc* out);

// The same on owned values, for callers outside PostgreSQL (tests).
struct Copies {
    std::vector<Hlc> hlcs;
    std::optional<Hlc> deleted_at;
    bool deletion_fenced = false;

    bool operator==(const Copies& o) const {
        return hlcs == o.hlcs && deleted_at == o.deleted_at && deletion_fenced == o.deletion_fenced;
    }
    bool operator!=(const Copies& o) const { return !(*this == o); }
    Names names() const { return Names{hlcs.data(), hlcs.size(), deleted_at, deletion_fenced}; }
};
Copies combine(const Copies& a, const Copies& b);

// Which copy a history presents a message as, from copies in stamp order
// (smallest hlc first): the first that no fence makes an orphan, else the
// first. A copy a fenced region wrote after its fence (its client was told
// 5C004 and retried elsewhere) never beats one an active region
// acknowledged. A function of replicated facts only (the copies and
// causal.fences), so every region that holds them presents the same one,
// also when a fence arrives after the copies. Every copy's hlc names the
// message whichever is presented.
template <typename It, typename Fenced>
It presented_copy(It first, It last, Fenced fenced) {
    for (It it = first; it != last; ++it)
        if (!fenced(*it)) return it;
    return first;
}

}  // namespace causal::copies
