// pg_causal's own SQLSTATEs, class 5C. Clients branch on them: a fenced
// region and a stale epoch mean "go to another region", a region behind
// means "wait or go elsewhere".
#pragma once

#include "infra/postgres.hpp"

namespace causal::pg {

constexpr int kRegionFenced = MAKE_SQLSTATE('5', 'C', '0', '0', '1');
constexpr int kStaleEpoch = MAKE_SQLSTATE('5', 'C', '0', '0', '2');
constexpr int kRegionBehind = MAKE_SQLSTATE('5', 'C', '0', '0', '3');

}  // namespace causal::pg
