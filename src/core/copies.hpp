// One message, several copies. A client that retries in another region, a
// relayed row and a deletion all make copies of one msg_id; every region
// must end up storing the same one row for it, whatever order the copies
// arrive in. This is that rule, the one home of it: the insert trigger's
// apply path and the causal merge both decide by it.
//
// PostgreSQL-free.
#pragma once

#include <optional>

#include "hlc.hpp"

namespace causal::copies {

// What decides between copies: the hlc the copy was stamped with (its
// stamp: hlc, deps, region and epoch travel together) and, for a deleted
// message, when it was deleted.
struct Copy {
    Hlc hlc;
    std::optional<Hlc> deleted_at;  // set on a tombstone

    bool operator==(const Copy& o) const { return hlc == o.hlc && deleted_at == o.deleted_at; }
    bool operator!=(const Copy& o) const { return !(*this == o); }
};

// Whose stamp a message keeps: the smallest hlc, in every region.
inline bool stamp_wins(const Hlc& a, const Hlc& b) { return compare(a, b) < 0; }

// The copy a message is stored as, given two: the winning stamp, deleted if
// either copy is (a deletion is never undone by a late copy), at the earliest
// deletion time. Associative, commutative and idempotent, so any order and
// grouping of arrivals gives the same result.
Copy combine(const Copy& a, const Copy& b);

// What a region holding `stored` does when `incoming` arrives.
struct Resolution {
    bool changes = false;             // the stored row must be rewritten
    bool stamp_from_incoming = false;  // hlc, deps, region and epoch
    bool body_from_incoming = false;   // the message's own columns
    std::optional<Hlc> deleted_at;
};
// The row it then holds is combine(stored, incoming): the stamp of the
// winner, and the body of the winner or, once deleted, of a tombstone (whose
// body is erased).
Resolution resolve(const Copy& stored, const Copy& incoming);

}  // namespace causal::copies
