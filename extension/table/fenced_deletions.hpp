// A fenced region's deletions (src/core/copies.hpp: they delete nothing):
// how a row's deletion is judged, and the record each region keeps of those
// that reached it (causal.fenced_deletions), for the operator and for the
// relay, which brings back a body such a deletion erased.
#pragma once

#include <optional>

#include "table/message_table.hpp"

namespace causal::pg {

// Whether `row`'s deletion (`deleted_at`, its tombstone's) is one its
// writer (written_by) stamped in a fenced interval of its own. A table
// without written_by (not updated from 0.2.0 yet) has none.
bool deletion_fenced(const Firing& t, HeapTuple row, const std::optional<Hlc>& deleted_at);

// What a fenced deletion did here.
enum class FencedDeletion { Kept, AwaitingBody, Restored, Erased };

// Records `tombstone`'s fenced deletion, once per message.
void note_fenced_deletion(const Firing& t, HeapTuple tombstone, FencedDeletion state);

// The message whose body a fenced deletion erased here got it back, or an
// active region deleted it: its record no longer awaits a body.
void settle_fenced_deletion(const Firing& t, Datum msg_id, FencedDeletion state);

}  // namespace causal::pg
