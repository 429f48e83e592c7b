// Message ids: UUID version 7 (RFC 9562), 48 bits of Unix milliseconds then
// random bits. Time-ordered ids land at the right edge of the msg_id btree
// instead of on a random page of it, which is most of what a random (v4)
// uuid costs an insert.
#pragma once

#include <cstdint>

namespace causal {

void uuid_v7(uint64_t unix_ms, const uint8_t (&random)[10], uint8_t (&out)[16]);

}  // namespace causal
