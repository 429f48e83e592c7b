// NOTIFY for causal message tables created with notify => true.
#pragma once

#include "table/message_table.hpp"

namespace causal::pg {

enum class NotifyKind { Message, Orphan, Deleted };

// causal.notify_payload
enum class NotifyPayload { Kind, Hlc };
extern int notify_payload;

// NOTIFY "<schema>.<table>", 'message', 'orphan' or 'deleted', sent at
// commit. PostgreSQL 15 lets any session LISTEN on any channel, so the
// payload says what any login may know (pg_stat_user_tables counts the
// same writes): no conversation key, no hlc. A listener reads what is new
// from its cursor (causal.catch_up). A transaction sends each payload once.
// With causal.notify_payload = hlc (a server's setting, for servers whose
// every login may know when each message was written, and where: a
// latency probe's) the payload is '<kind> <hlc>', one per message.
// A channel name is at most NAMEDATALEN - 1 bytes: longer ones are cut
// there (at a character boundary) rather than failing the write. Sent only
// while a session of the database may be listening (listeners.hpp).
// Raises nothing for the row itself.
void notify_row(const Firing& t, HeapTuple row, NotifyKind kind);

}  // namespace causal::pg
