// NOTIFY for causal message tables created with notify => true.
#pragma once

#include "message_table.hpp"

namespace causal::pg {

enum class NotifyKind { Message, Orphan, Deleted };

// NOTIFY "<schema>.<table>", '<conversation> <hlc>[ orphan| deleted]', sent at
// commit. A channel name is at most NAMEDATALEN - 1 bytes: longer ones are
// cut there (at a character boundary) rather than failing the write, and a
// payload too long for NOTIFY (a huge conversation key) is not sent: a
// WARNING says so. Sent only while a session of the database may be
// listening (listeners.hpp). Raises nothing for the row itself.
void notify_row(const Firing& t, HeapTuple row, const Hlc& hlc, NotifyKind kind);

}  // namespace causal::pg
