// Writes the starting corpus of the fuzz targets into DIR/<target>/: a few
// well-formed inputs, so that the fuzzers start from the shape of the real
// thing (a serialized merge state has a header and counts that random bytes
// rarely hit). Run by regress/fuzz/run when a corpus is empty.
#include <cstdio>
#include <fstream>
#include <memory_resource>
#include <string>
#include <vector>

#include "hlc.hpp"
#include "merge.hpp"

namespace {

void write(const std::string& path, const void* data, size_t size) {
    std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

causal::merge::MsgId id(uint8_t n) {
    causal::merge::MsgId m{};
    m[15] = n;
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: seeds DIR\n");
        return 2;
    }
    const std::string dir = argv[1];
    const char* texts[] = {"1732590000123.00042@7", " 0.00000@0 ", "281474976710655.65535@65535", "1.00000@1"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; ++i)
        write(dir + "/hlc_text/seed" + std::to_string(i), texts[i], std::char_traits<char>::length(texts[i]));
    const auto bytes = causal::binary(causal::Hlc::from_parts(1732590000123, 42, 7));
    write(dir + "/hlc_binary/seed0", bytes.data(), bytes.size());

    causal::merge::Input input(std::pmr::new_delete_resource());
    const causal::Hlc a = causal::Hlc::from_parts(1000, 0, 1), b = causal::Hlc::from_parts(1001, 0, 2),
                      c = causal::Hlc::from_parts(1002, 3, 1);
    input.add(id(1), a, nullptr, 0, std::string_view("us-east"), 0);
    input.add(id(2), b, &a, 1, std::string_view("eu-west"), 1);
    const causal::Hlc both[] = {a, b};
    input.add(id(3), c, both, 2, std::nullopt, std::nullopt);
    input.add(id(2), c, &a, 1, std::string_view("eu-west"), 1);  // a second copy
    std::vector<uint8_t> state(input.serialized_size());
    input.serialize(state.data());
    write(dir + "/merge_state/seed0", state.data(), state.size());
    return 0;
}
