// Subtransactions around code that may raise, where raising is not an
// option (the apply path).
#pragma once

#include "infra/postgres.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
}

namespace causal::pg {

// Runs `attempt` in a subtransaction. Returns false, with the error in
// *error_out, when it raised; the error is then handled and nothing
// `attempt` did remains.
template <typename Attempt>
bool in_subtransaction(Attempt attempt, ErrorData** error_out) {
    MemoryContext caller_context = CurrentMemoryContext;
    ResourceOwner caller_owner = CurrentResourceOwner;
    volatile bool succeeded = true;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(caller_context);
    PG_TRY();
    {
        attempt();
        ReleaseCurrentSubTransaction();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        ErrorData* error = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        *error_out = error;
        succeeded = false;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller_context);
    CurrentResourceOwner = caller_owner;
    return succeeded;
}

}  // namespace causal::pg
