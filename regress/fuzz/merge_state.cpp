// libFuzzer target: the merge aggregate's partial state as it crosses
// between parallel workers (causal.merge_deserialize). Any bytes either
// throw causal::Error or make a state that serializes to the same bytes,
// merges into a history, and answers catch-up questions; nothing else may
// happen.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <vector>

#include "merge.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::pmr::memory_resource* memory = std::pmr::new_delete_resource();
    causal::merge::Input input(memory);
    try {
        input.deserialize(data, size);
    } catch (const causal::Error&) {
        return 0;
    }
    // Serialize, read back, serialize again: a fixed point.
    std::vector<uint8_t> once(input.serialized_size());
    input.serialize(once.data());
    causal::merge::Input again(memory);
    again.deserialize(once.data(), once.size());
    std::vector<uint8_t> twice(again.serialized_size());
    again.serialize(twice.data());
    if (once != twice) std::abort();

    try {
        // A fence on whatever region the state names first makes the
        // orphan rule run too.
        const causal::merge::Fence fence{"us-east", 0, causal::Hlc{}, std::nullopt};
        causal::merge::History history = input.merge({fence}, memory);
        std::vector<causal::Hlc> seen;
        for (size_t i = 0; i < history.messages().size() && i < 3; ++i)
            seen.push_back(history.messages()[i].hlc);
        seen.push_back(causal::Hlc{});
        (void)history.catch_up(seen.data(), seen.size(), memory);
        for (const auto& m : history.messages())
            if (!history.find(m.hlc)) std::abort();
    } catch (const causal::Error&) {
        // limits (LimitExceeded) are the only errors merging may raise
    }
    return 0;
}
