// Reading one conversation of a message table: what causal.catch_up() and
// causal.history() share with the merge aggregate's glue (merge.cpp).
#pragma once

#include "core/merge.hpp"
#include "infra/memory.hpp"
#include "infra/postgres.hpp"
#include "mesh/regions.hpp"

extern "C" {
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

// A row: its own copy, and the other copies of its `copies` column
// (causal.copy[]: hlc, deps, region, epoch), each one more copy of the
// message. NULL elements and elements without an hlc are skipped; so is a
// row without msg_id or hlc, as aggregates skip NULL input.
void add_row(merge::Input& input, Datum msg_id, bool msg_id_null, Datum hlc, bool hlc_null, Datum deps,
             bool deps_null, Datum region, bool region_null, Datum epoch, bool epoch_null, Datum copies = Datum(0),
             bool copies_null = true);

// The one history of `input` under `fences`, in `area`.
merge::History* merge_in(const merge::Input& input, FenceList fences, WorkArea area);

// How to read a conversation of a message table.
struct ConversationQuery {
    char* sql;       // every row of the conversation: $1 the conversation
    char* tail_sql;  // the rows a cursor reads, headed at or after $2
    char* named_sql; // rows headed before $2 with a copy named in $3
    char* rows_sql;  // as sql, with the whole row last
    Oid key_type;    // the conversation column's type: the parameter's
    Datum key;       // the conversation, converted by that type's input function
    Oid hlc_type;
    AttrNumber key_attnum;
    Oid key_equal;      // the equality operator the queries compare the key with
    Oid key_collation;  // and the column's collation, which they use
};

// Checks that the caller may read `relid` and that it is what
// causal.enable() made of a table, and keeps it locked (AccessShareLock)
// until the transaction ends. `schema` is pg_causal's.
ConversationQuery conversation_query(Oid relid, const char* conversation, Oid schema);

}  // namespace causal::pg
