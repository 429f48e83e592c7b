// Reading one conversation of a message table into the core merge
// (src/core/merge.hpp): what the merge aggregate (merge.cpp),
// causal.catch_up() (catch_up.cpp) and causal.history() (history.cpp) share.
#pragma once

#include "core/merge.hpp"
#include "infra/memory.hpp"
#include "infra/postgres.hpp"
#include "mesh/liveness.hpp"
#include "mesh/regions.hpp"

extern "C" {
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/relcache.h"
}

namespace causal::pg {

// A work area for one call: a context under the caller's, and a resource
// on it, both gone with MemoryContextDelete(area.context).
struct WorkArea {
    MemoryContext context;
    MemoryContextResource* memory;
};
WorkArea new_work_area();

// The hlcs of a causal.hlc[] value (deps, or what a client saw), in place.
struct HlcSpan {
    const Hlc* values = nullptr;
    size_t count = 0;
};
// Raises 22004 on a NULL element; `what` names the array in that message.
HlcSpan hlcs_of(ArrayType* array, const char* what = "a message's deps");

// A row: its own copy, and the other copies of its `copies` column
// (causal.copy[]: hlc, deps, region, epoch), each one more copy of the
// message. NULL elements and elements without an hlc are skipped; so is a
// row without msg_id or hlc, as aggregates skip NULL input.
void add_row(merge::Input& input, Datum msg_id, bool msg_id_null, Datum hlc, bool hlc_null, Datum deps,
             bool deps_null, Datum region, bool region_null, Datum epoch, bool epoch_null, Datum copies = Datum(0),
             bool copies_null = true);
// Every row of an SPI result whose first six columns are msg_id, hlc, deps,
// crdb_region, epoch and copies (ConversationQuery's statements).
void add_selected_rows(merge::Input& input, const SPITupleTable* rows, uint64 count);

// The one history of `input` under `fences`, in `area`.
merge::History* merge_in(const merge::Input& input, FenceList fences, WorkArea area);

// The values of the causal.merged row of the history's message `index`
// (position, msg_id, hlc, delivered, concurrent, orphan), pointing into it.
constexpr int kMergedColumns = 6;
void merged_row(const merge::History& history, uint32_t index, Datum (&values)[kMergedColumns]);

// How to read a conversation of a message table.
struct ConversationQuery {
    char* sql;       // every row of the conversation: $1 the conversation
    char* tail_sql;  // the rows a cursor reads, headed at or after $2
    char* named_sql; // rows headed before $2 with a copy named in $3
    char* rows_sql;  // as sql, with the whole row last
    char* deleted_sql;        // msg_id, hlc of the conversation's deleted messages, by deletion
    char* deleted_since_sql;  // those deleted at or after $2
    Oid key_type;    // the conversation column's type: the parameter's
    Datum key;       // the conversation, converted by that type's input function
    Oid hlc_type;
    AttrNumber key_attnum;
    Oid key_equal;      // the equality operator the queries compare the key with
    Oid key_collation;  // and the column's collation, which they use
};

// Checks that the caller may read `relid` and that it is a message table
// whose columns are where and what pg_causal reads (table_shape.hpp), and
// keeps it locked (AccessShareLock) until the transaction ends.
ConversationQuery conversation_query(Oid relid, const char* conversation);

// Whether this region is still catching up on a peer's backlog: what it
// holds of a conversation may then lack messages on their way, behind those
// it has. peer_backlog(), and in the moments after a start, before the
// liveness worker has judged, whether this region has peers at all (a
// query, only then).
bool catching_up_now(Backlog& backlog);
// 5C003 for that, naming a region that is current to read from meanwhile.
[[noreturn]] void raise_catching_up(const Backlog& backlog, const char* conversation, bool can_wait);

}  // namespace causal::pg
