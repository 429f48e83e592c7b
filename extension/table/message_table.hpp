// A causal message table as its triggers see it: which trigger fired, where
// pg_causal's columns are in the row and whether they have pg_causal's
// types, and the row's values. Shared by the local path (local_path.cpp),
// the apply path (apply_path.cpp), the quarantine and NOTIFY.
//
// Everything here runs in frames that hold only trivially destructible
// objects, so ereport may longjmp through them.
#pragma once

#include <optional>

#include "core/hlc.hpp"
#include "infra/postgres.hpp"

extern "C" {
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "utils/rel.h"
}

namespace causal::pg {

// The most deps pg_causal accepts on a message, a policy: more than any
// chat client sends (a context is the latest message of each thread of a
// conversation the client has seen). Not the merge state's format limit
// (merge::Input::kDepsFieldMax, 65,535), which the merge checks itself.
constexpr int kMaxDepsAccepted = 128;

// Where pg_causal's columns are in this table's rows; written_by is 0 in a
// table of 0.2.0 not updated yet.
struct Columns {
    AttrNumber conversation, msg_id, hlc, deps, region, epoch, deleted_at, copies, written_by;
};

struct Firing {
    TriggerData* data;
    Relation rel;
    TupleDesc desc;
    Columns columns;
    // What makes the table unfit to be a message table (a column missing or
    // of another type), or nullptr; problem_code is its SQLSTATE.
    const char* problem;
    int problem_code;
    bool notify;
    Oid function;  // the trigger function firing
};

// The trigger functions, as causal.enable() creates them: `before` is
// causal.message_trigger(), otherwise causal.message_stored(). Raises when
// called otherwise; a table that is unfit is reported in Firing::problem.
Firing read_trigger(FunctionCallInfo fcinfo, bool before);

// Raises Firing::problem, for the local path.
void require_fit(const Firing& t);

// Whether attribute `attnum` is one of pg_causal's stamp columns (msg_id,
// hlc, deps, crdb_region, epoch, deleted_at, copies) or the conversation:
// what a tombstone keeps. The rest is the message's body.
bool is_stamp_column(const Firing& t, AttrNumber attnum);

inline Datum get(const Firing& t, HeapTuple row, AttrNumber attnum, bool* isnull) {
    return heap_getattr(row, attnum, t.desc, isnull);
}
// The row's hlc, or nullptr for NULL.
const Hlc* get_hlc(const Firing& t, HeapTuple row);
// When the message was deleted, if it was (a tombstone).
std::optional<Hlc> get_deleted_at(const Firing& t, HeapTuple row);

// The deps of a row, unpacked. `problem` names what is wrong with them.
struct Deps {
    Datum* elements = nullptr;
    bool* nulls = nullptr;
    int count = 0;
    const Hlc* max = nullptr;
    const char* problem = nullptr;
    int problem_code = 0;
};
Deps read_deps(const Firing& t, HeapTuple row);

// The text form, palloc'd.
char* hlc_text(const Hlc& value);
// "schema"."table", quoted as needed.
char* qualified_name(Relation rel);

}  // namespace causal::pg
