#include "msg_id.hpp"

namespace causal {

void uuid_v7(uint64_t unix_ms, const uint8_t (&random)[10], uint8_t (&out)[16]) {
    for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(unix_ms >> (40 - 8 * i));
    out[6] = static_cast<uint8_t>(0x70 | (random[0] & 0x0F));  // version 7
    out[7] = random[1];
    out[8] = static_cast<uint8_t>(0x80 | (random[2] & 0x3F));  // variant 10
    for (int i = 9; i < 16; ++i) out[i] = random[i - 6];
}

}  // namespace causal
