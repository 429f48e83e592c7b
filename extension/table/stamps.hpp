// A message row's copies as stamps: the stamp in the row's own columns
// (hlc, deps, crdb_region, epoch) and the ones in its `copies` column, an
// array of causal.copy. The apply path stores rows by the copy rule
// (src/core/copies.hpp) with these; the merge reads them.
#pragma once

#include "core/copies.hpp"
#include "table/message_table.hpp"

namespace causal::pg {

// The elements of a causal.copy[] value, each a composite (hlc, deps,
// region, epoch) or nullptr for a NULL element; returns how many (palloc'd).
int copy_elements(Datum copies, HeapTupleHeader** elements);

struct Stamp {
    Hlc hlc;
    Datum deps;
    Datum region;
    Datum epoch;
    bool deps_null, region_null, epoch_null;
};

// Every stamp of `row`, its own first, then its copies', sorted by hlc and
// without repeats (palloc'd). `problem` names what makes them unusable: a
// copy without an hlc, or one whose deps are not older than it.
struct Stamps {
    Stamp* items;
    int count;
    Hlc* hlcs;  // the items' hlcs, for copies::Names
    const char* problem;
};
Stamps read_stamps(const Firing& t, HeapTuple row);

copies::Names names_of(const Stamps& stamps, const std::optional<Hlc>& deleted_at, bool deletion_fenced);

// The `copies` value for stamps[1..count): every stamp but the head.
Datum copies_datum(const Firing& t, const Stamp* stamps, int count);

// An empty `copies` value.
Datum no_copies(const Firing& t);

}  // namespace causal::pg
