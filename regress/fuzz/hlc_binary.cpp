// libFuzzer target: causal.hlc's binary input (hlc_recv). Ten bytes are a
// value that round-trips through both forms; any other length throws
// causal::Error.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "hlc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    causal::Hlc value;
    try {
        value = causal::parse_binary(data, size);
    } catch (const causal::Error&) {
        if (size == causal::kHlcBinarySize) std::abort();
        return 0;
    }
    const auto bytes = causal::binary(value);
    if (size != bytes.size() || std::memcmp(bytes.data(), data, size) != 0) std::abort();
    if (causal::parse(causal::to_string(value)) != value) std::abort();
    for (uint16_t r : value.reserved)
        if (r != 0) std::abort();
    return 0;
}
