// A message's msg_id: a time-ordered UUID (version 7, src/core/msg_id.hpp),
// the default of every message table's msg_id and what the local path
// gives a row that comes without one.
#pragma once

#include "infra/postgres.hpp"

namespace causal::pg {

Datum new_msg_id();

}  // namespace causal::pg
