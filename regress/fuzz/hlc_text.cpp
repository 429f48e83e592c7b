// libFuzzer target: causal.hlc's text input (hlc_in). Any bytes either
// parse to a value whose canonical text parses back to it, or throw
// causal::Error; nothing else may happen (a crash, a hang, another
// exception, undefined behaviour under the sanitizers).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hlc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    causal::Hlc value;
    try {
        value = causal::parse(text);
    } catch (const causal::Error&) {
        return 0;
    }
    // One value, one text: what was accepted is the canonical form, but for
    // the blanks around it.
    const std::string canonical = causal::to_string(value);
    if (causal::parse(canonical) != value) std::abort();
    if (text.find(canonical) == std::string_view::npos) std::abort();
    const auto bytes = causal::binary(value);
    if (causal::parse_binary(bytes.data(), bytes.size()) != value) std::abort();
    return 0;
}
