// This backend's view of causal.regions and causal.fences: read on first use
// and again only after a committed change to either table (the tables'
// triggers send a relcache invalidation), so the insert path pays for a
// lookup only once per change of the fencing state.
#pragma once

#include <cstdint>

#include "core/hlc.hpp"
#include "core/merge.hpp"
#include "infra/postgres.hpp"

namespace causal::pg {

struct RegionState {
    int64_t epoch;         // 0 for a region not in causal.regions yet
    bool fenced;
    const char* live_region;  // another active region to send clients to, or nullptr
};

// The state of this instance's region (causal.region).
RegionState own_region_state();

// Written by `region` in `epoch` after that epoch was fenced.
bool fenced_write(const char* region, int64_t epoch, const Hlc& hlc);

// A deletion `region` stamped at `deleted_at` inside one of its fenced
// intervals (merge::fenced_deletion): it deletes nothing.
bool fenced_deletion(const char* region, const Hlc& deleted_at);

struct FenceList {
    const merge::Fence* fences;
    size_t count;
};

// causal.fences read into `context`, as the running statement sees it or,
// with new_snapshot, as a new snapshot does (READ COMMITTED). Not the
// cache above: a merge's orphans must depend on the snapshot alone, never on
// the plan or on what a cache held.
FenceList read_fences_into(MemoryContext context, bool new_snapshot);

}  // namespace causal::pg
