#include "merge.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "copies.hpp"

namespace causal::merge {

namespace {

// Sorts after every real value: the place of orphans whose region has not
// rejoined yet.
constexpr Hlc kEndOfTime{~uint64_t{0}, Hlc::kMaxNode, {0, 0, 0}};

[[noreturn]] void limit(const std::string& what) {
    throw Error(ErrorKind::LimitExceeded, "causal.merge: " + what);
}

[[noreturn]] void corrupt(const char* what) {
    throw Error(ErrorKind::InvalidBinary, "causal.merge: invalid serialized state", what);
}

// The byte form: a magic word, then regions, copies and deps, each counted.
constexpr uint32_t kMagic = 0x434d5231;  // "CMR1"
constexpr size_t kCopyBytes = 16 + sizeof(Hlc) + 8 + 4 + 2 + 2 + 1;

class Writer {
public:
    explicit Writer(uint8_t* out) : out_(out) {}
    template <typename T>
    void put(const T& value) {
        std::memcpy(out_, &value, sizeof value);
        out_ += sizeof value;
    }
    void bytes(const void* data, size_t size) {
        if (size > 0) std::memcpy(out_, data, size);
        out_ += size;
    }

private:
    uint8_t* out_;
};

class Reader {
public:
    Reader(const uint8_t* data, size_t size) : data_(data), left_(size) {}
    template <typename T>
    T get() {
        T value;
        bytes(&value, sizeof value);
        return value;
    }
    void bytes(void* out, size_t size) {
        if (size > left_) corrupt("it ends early");
        if (size > 0) std::memcpy(out, data_, size);
        data_ += size;
        left_ -= size;
    }
    const uint8_t* take(size_t size) {
        if (size > left_) corrupt("it ends early");
        const uint8_t* at = data_;
        data_ += size;
        left_ -= size;
        return at;
    }
    size_t left() const { return left_; }

private:
    const uint8_t* data_;
    size_t left_;
};

}  // namespace

bool fenced_write(const Fence& fence, std::string_view region, int64_t epoch, const Hlc& hlc) {
    return fence.epoch == epoch && fence.region == region && hlc > fence.fenced_at;
}

bool fenced_deletion(const Fence& fence, std::string_view region, const Hlc& deleted_at) {
    return fence.region == region && deleted_at > fence.fenced_at &&
           (!fence.lifted_at || deleted_at < *fence.lifted_at);
}

Input::Input(std::pmr::memory_resource* memory)
    : memory_(memory), copies_(memory), deps_(memory), regions_(memory) {}

uint16_t Input::intern(std::string_view region) {
    if (last_region_ != kNoRegion && regions_[last_region_] == region) return last_region_;
    for (size_t i = 0; i < regions_.size(); ++i)
        if (regions_[i] == region) return last_region_ = static_cast<uint16_t>(i);
    if (regions_.size() >= kMaxRegions) limit("more than 65534 distinct regions in one group");
    regions_.emplace_back(region);
    return last_region_ = static_cast<uint16_t>(regions_.size() - 1);
}

void Input::append_deps(const Hlc* deps, size_t count) {
    if (count > kDepsFieldMax) limit("a message has more than 65535 deps");
    if (deps_.size() + count > kMaxDepsTotal) limit("more than 2^32 - 1 deps in one group");
    deps_.insert(deps_.end(), deps, deps + count);
}

void Input::add(const MsgId& msg_id, const Hlc& hlc, const Hlc* deps, size_t dep_count,
                std::optional<std::string_view> region, std::optional<int64_t> epoch) {
    if (copies_.size() >= kMaxCopies) limit("more than 2^31 messages in one group");
    const auto deps_begin = static_cast<uint32_t>(deps_.size());
    append_deps(deps, dep_count);
    copies_.push_back(Copy{msg_id, hlc, epoch.value_or(0), deps_begin,
                           static_cast<uint16_t>(dep_count),
                           region ? intern(*region) : kNoRegion, epoch.has_value()});
}

void Input::add_all(const Input& other) {
    if (&other == this) return;  // union with itself: nothing new
    if (copies_.size() + other.copies_.size() > kMaxCopies) limit("more than 2^31 messages in one group");
    std::pmr::vector<uint16_t> region_map(memory_);
    region_map.reserve(other.regions_.size());
    for (const auto& region : other.regions_) region_map.push_back(intern(region));
    copies_.reserve(copies_.size() + other.copies_.size());
    for (const Copy& copy : other.copies_) {
        Copy mine = copy;
        mine.deps_begin = static_cast<uint32_t>(deps_.size());
        append_deps(other.deps_.data() + copy.deps_begin, copy.deps_count);
        mine.region = copy.region == kNoRegion ? kNoRegion : region_map[copy.region];
        copies_.push_back(mine);
    }
}

size_t Input::serialized_size() const {
    size_t size = sizeof kMagic + sizeof(uint32_t);
    for (const auto& region : regions_) size += sizeof(uint32_t) + region.size();
    size += 2 * sizeof(uint64_t) + copies_.size() * kCopyBytes + deps_.size() * sizeof(Hlc);
    return size;
}

void Input::serialize(uint8_t* out) const {
    Writer w(out);
    w.put(kMagic);
    w.put(static_cast<uint32_t>(regions_.size()));
    for (const auto& region : regions_) {
        w.put(static_cast<uint32_t>(region.size()));
        w.bytes(region.data(), region.size());
    }
    w.put(static_cast<uint64_t>(copies_.size()));
    w.put(static_cast<uint64_t>(deps_.size()));
    // Field by field: a struct's padding bytes are not part of the state.
    for (const Copy& c : copies_) {
        w.bytes(c.msg_id.data(), c.msg_id.size());
        w.put(c.hlc);
        w.put(c.epoch);
        w.put(c.deps_begin);
        w.put(c.deps_count);
        w.put(c.region);
        w.put(static_cast<uint8_t>(c.has_epoch));
    }
    w.bytes(deps_.data(), deps_.size() * sizeof(Hlc));
}

void Input::deserialize(const uint8_t* data, size_t size) {
    Reader r(data, size);
    if (r.get<uint32_t>() != kMagic) corrupt("wrong magic number");
    const auto region_count = r.get<uint32_t>();
    if (region_count > kMaxRegions) corrupt("too many regions");
    std::pmr::vector<uint16_t> region_map(memory_);
    region_map.reserve(region_count);
    for (uint32_t i = 0; i < region_count; ++i) {
        const auto length = r.get<uint32_t>();
        const auto* name = reinterpret_cast<const char*>(r.take(length));
        region_map.push_back(intern(std::string_view(name, length)));
    }
    const auto copy_count = r.get<uint64_t>();
    const auto dep_count = r.get<uint64_t>();
    // Divide before multiplying: counts from the bytes must not overflow.
    if (copy_count > r.left() / kCopyBytes || dep_count > r.left() / sizeof(Hlc) ||
        r.left() != copy_count * kCopyBytes + dep_count * sizeof(Hlc))
        corrupt("its counts do not match its length");
    if (copies_.size() + copy_count > kMaxCopies) limit("more than 2^31 messages in one group");
    const uint8_t* copy_bytes = r.take(copy_count * kCopyBytes);
    const auto* deps = reinterpret_cast<const uint8_t*>(r.take(dep_count * sizeof(Hlc)));
    Reader copies(copy_bytes, copy_count * kCopyBytes);
    copies_.reserve(copies_.size() + copy_count);
    for (uint64_t i = 0; i < copy_count; ++i) {
        Copy c;
        copies.bytes(c.msg_id.data(), c.msg_id.size());
        c.hlc = copies.get<Hlc>();
        c.epoch = copies.get<int64_t>();
        const auto begin = copies.get<uint32_t>();
        c.deps_count = copies.get<uint16_t>();
        c.region = copies.get<uint16_t>();
        c.has_epoch = copies.get<uint8_t>() != 0;
        if (uint64_t{begin} + c.deps_count > dep_count) corrupt("a message's deps lie outside it");
        if (c.region != kNoRegion) {
            if (c.region >= region_count) corrupt("a message names an unknown region");
            c.region = region_map[c.region];
        }
        c.deps_begin = static_cast<uint32_t>(deps_.size());
        // Byte-copied: the dep array need not be aligned for Hlc.
        if (deps_.size() + c.deps_count > kMaxDepsTotal) limit("more than 2^32 - 1 deps in one group");
        const size_t at = deps_.size();
        deps_.resize(at + c.deps_count);
        // Not for none: with no deps at all, both pointers may be null.
        if (c.deps_count > 0)
            std::memcpy(deps_.data() + at, deps + size_t{begin} * sizeof(Hlc), c.deps_count * sizeof(Hlc));
        copies_.push_back(c);
    }
}

// The order that picks one copy per msg_id: the copy rule's winning stamp
// (src/core/copies.hpp) first; the rest only make ties between malformed
// copies deterministic, by content and never by arrival.
bool Input::copy_less(const Copy& a, const Copy& b) const {
    if (int c = std::memcmp(a.msg_id.data(), b.msg_id.data(), a.msg_id.size()); c != 0) return c < 0;
    if (copies::stamp_wins(a.hlc, b.hlc)) return true;
    if (copies::stamp_wins(b.hlc, a.hlc)) return false;
    if (a.region != b.region) {
        if (a.region == kNoRegion || b.region == kNoRegion) return a.region == kNoRegion;
        if (int c = regions_[a.region].compare(regions_[b.region]); c != 0) return c < 0;
    }
    if (a.has_epoch != b.has_epoch) return !a.has_epoch;
    if (a.epoch != b.epoch) return a.epoch < b.epoch;
    const Hlc* da = deps_.data() + a.deps_begin;
    const Hlc* db = deps_.data() + b.deps_begin;
    return std::lexicographical_compare(da, da + a.deps_count, db, db + b.deps_count);
}

const Fence* Input::fence_of(const Copy& copy, const std::vector<Fence>& fences) const {
    if (copy.region == kNoRegion || !copy.has_epoch) return nullptr;
    for (const Fence& fence : fences)
        if (fenced_write(fence, regions_[copy.region], copy.epoch, copy.hlc)) return &fence;
    return nullptr;
}

History Input::merge(const std::vector<Fence>& fences, std::pmr::memory_resource* memory,
                     std::optional<Hlc> since) const {
    const auto n = static_cast<uint32_t>(copies_.size());
    History history(memory);

    // 1. One presented copy per msg_id, by the copy rule (copies.hpp): in
    // stamp order, the first no fence makes an orphan.
    std::pmr::vector<uint32_t> by_id(n, memory);
    std::iota(by_id.begin(), by_id.end(), 0u);
    std::sort(by_id.begin(), by_id.end(),
              [&](uint32_t a, uint32_t b) { return copy_less(copies_[a], copies_[b]); });
    std::pmr::vector<uint32_t> winners(memory);  // copy index of each message's presented copy
    // Every copy's hlc names the message: a dep on a copy that is not the
    // presented one still points at the message. The flag puts a message's
    // own hlc before another copy's when (malformed) they are equal.
    struct Name {
        Hlc hlc;
        bool lost;
        uint32_t message;  // a winner index, then a natural index
    };
    std::pmr::vector<Name> names(memory);
    names.reserve(n);
    for (uint32_t begin = 0; begin < n;) {
        uint32_t end = begin + 1;
        while (end < n && copies_[by_id[end]].msg_id == copies_[by_id[begin]].msg_id) ++end;
        const uint32_t* presented = copies::presented_copy(
            by_id.data() + begin, by_id.data() + end,
            [&](uint32_t copy) { return fence_of(copies_[copy], fences) != nullptr; });
        winners.push_back(*presented);
        for (uint32_t i = begin; i < end; ++i)
            names.push_back(Name{copies_[by_id[i]].hlc, by_id[i] != *presented,
                                 static_cast<uint32_t>(winners.size() - 1)});
        begin = end;
    }
    const auto m = static_cast<uint32_t>(winners.size());

    // 2. The natural order: ascending hlc of the presented copy.
    std::pmr::vector<uint32_t> natural(m, memory);  // winner indexes
    std::iota(natural.begin(), natural.end(), 0u);
    auto by_hlc_then_id = [&](uint32_t a, uint32_t b) {
        const Copy& x = copies_[winners[a]];
        const Copy& y = copies_[winners[b]];
        if (int c = compare(x.hlc, y.hlc); c != 0) return c < 0;
        return x.msg_id < y.msg_id;
    };
    std::sort(natural.begin(), natural.end(), by_hlc_then_id);
    std::pmr::vector<uint32_t> rank(m, memory);  // winner index -> natural index
    for (uint32_t i = 0; i < m; ++i) rank[natural[i]] = i;

    // One hlc naming two messages (malformed) names, the same way in every
    // region, the one whose own hlc it is, else the first in natural order.
    for (auto& name : names) name.message = rank[name.message];
    std::sort(names.begin(), names.end(), [](const Name& a, const Name& b) {
        if (int c = compare(a.hlc, b.hlc); c != 0) return c < 0;
        if (a.lost != b.lost) return !a.lost;
        return a.message < b.message;
    });
    history.by_hlc_.reserve(names.size());
    for (const Name& name : names)
        if (history.by_hlc_.empty() || history.by_hlc_.back().first != name.hlc)
            history.by_hlc_.emplace_back(name.hlc, name.message);

    // 3. The deps graph. A dep below its message's hlc that names a message
    // here is an edge; any other (missing, or not in the message's past)
    // holds its message. A dep may name another copy than the presented one,
    // so the natural order need not be a topological order of the edges.
    struct Walk {
        Hlc key;  // where the message is presented: its hlc, or later for orphans
        bool held;
        bool orphan;
    };
    std::pmr::vector<Walk> walk(m, memory);
    std::pmr::vector<uint32_t> edge_begin(m + 1, memory);  // natural index space
    std::pmr::vector<uint32_t> edges(memory);
    std::pmr::vector<uint32_t> waiting_on(m, 0u, memory);  // unresolved edges, for the walk
    for (uint32_t i = 0; i < m; ++i) {
        const Copy& copy = copies_[winners[natural[i]]];
        Walk w{copy.hlc, false, false};
        if (const Fence* fence = fence_of(copy, fences)) {
            // Presented where its region rejoined, in its own causal order.
            w.orphan = true;
            w.key = fence->lifted_at ? std::max(*fence->lifted_at, copy.hlc) : kEndOfTime;
        }
        edge_begin[i] = static_cast<uint32_t>(edges.size());
        const Hlc* deps = deps_.data() + copy.deps_begin;
        for (uint16_t d = 0; d < copy.deps_count; ++d) {
            const Hlc& dep = deps[d];
            auto found = std::lower_bound(history.by_hlc_.begin(), history.by_hlc_.end(), dep,
                                          [](const auto& entry, const Hlc& h) { return entry.first < h; });
            const bool here = found != history.by_hlc_.end() && found->first == dep;
            if (!here && since && dep < *since && dep < copy.hlc) continue;  // the client's already
            if (!(dep < copy.hlc) || !here || found->second == i) {
                w.held = true;  // missing, or not in its past: cannot be satisfied here
                continue;
            }
            edges.push_back(found->second);
            ++waiting_on[i];
        }
        walk[i] = w;
    }
    edge_begin[m] = static_cast<uint32_t>(edges.size());

    // 4. Walk a topological order (Kahn's, the smallest natural index first,
    // so that without copies it is the natural order): a message's key is at
    // least its deps' keys, and it is held or an orphan when one of them is.
    // Messages on a cycle (only malformed copies make one) are never
    // reached: they are held.
    std::pmr::vector<uint32_t> dependents_begin(m + 1, 0u, memory);
    for (uint32_t e = 0; e < edges.size(); ++e) ++dependents_begin[edges[e] + 1];
    for (uint32_t i = 0; i < m; ++i) dependents_begin[i + 1] += dependents_begin[i];
    std::pmr::vector<uint32_t> dependents(edges.size(), memory);
    {
        std::pmr::vector<uint32_t> fill(dependents_begin.begin(), dependents_begin.end() - 1, memory);
        for (uint32_t i = 0; i < m; ++i)
            for (uint32_t e = edge_begin[i]; e < edge_begin[i + 1]; ++e) dependents[fill[edges[e]]++] = i;
    }
    std::pmr::vector<uint32_t> topological(memory);  // natural indexes, in walk order
    topological.reserve(m);
    std::pmr::vector<uint32_t> ready(memory);  // a min-heap of natural indexes
    auto later = [](uint32_t a, uint32_t b) { return a > b; };
    for (uint32_t i = 0; i < m; ++i)
        if (waiting_on[i] == 0) ready.push_back(i);
    std::make_heap(ready.begin(), ready.end(), later);
    while (!ready.empty()) {
        std::pop_heap(ready.begin(), ready.end(), later);
        const uint32_t i = ready.back();
        ready.pop_back();
        Walk& w = walk[i];
        for (uint32_t e = edge_begin[i]; e < edge_begin[i + 1]; ++e) {
            const Walk& dep = walk[edges[e]];
            w.held |= dep.held;
            w.orphan |= dep.orphan;
            w.key = std::max(w.key, dep.key);
        }
        topological.push_back(i);
        for (uint32_t d = dependents_begin[i]; d < dependents_begin[i + 1]; ++d) {
            if (--waiting_on[dependents[d]] == 0) {
                ready.push_back(dependents[d]);
                std::push_heap(ready.begin(), ready.end(), later);
            }
        }
    }
    std::pmr::vector<uint32_t> walk_rank(m, UINT32_MAX, memory);
    for (uint32_t t = 0; t < topological.size(); ++t) walk_rank[topological[t]] = t;
    for (uint32_t i = 0; i < m; ++i)
        if (walk_rank[i] == UINT32_MAX) walk[i].held = true;  // on a cycle, or after one

    // 5. Present: by key, then walk order (unreached ones last, naturally).
    // A message's key is at least its deps' keys and it comes later in the
    // walk, so deps still come first.
    std::pmr::vector<uint32_t> order(m, memory);  // natural indexes
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        if (int c = compare(walk[a].key, walk[b].key); c != 0) return c < 0;
        if (walk_rank[a] != walk_rank[b]) return walk_rank[a] < walk_rank[b];
        return a < b;
    });
    std::pmr::vector<uint32_t> position(m, memory);  // natural index -> presented index
    for (uint32_t p = 0; p < m; ++p) position[order[p]] = p;

    history.messages_.reserve(m);
    history.edges_begin_.reserve(m + 1);
    history.edges_.reserve(edges.size());
    for (uint32_t p = 0; p < m; ++p) {
        const uint32_t i = order[p];
        const Copy& copy = copies_[winners[natural[i]]];
        history.edges_begin_.push_back(static_cast<uint32_t>(history.edges_.size()));
        // The order extends the deps graph, so a path from this message back
        // to the one just before it could only be a direct dep: nothing lies
        // between them.
        bool follows_previous = false;
        for (uint32_t e = edge_begin[i]; e < edge_begin[i + 1]; ++e) {
            history.edges_.push_back(position[edges[e]]);
            follows_previous |= p > 0 && position[edges[e]] == p - 1;
        }
        history.messages_.push_back(
            Message{copy.msg_id, copy.hlc, !walk[i].held, p > 0 && !follows_previous, walk[i].orphan});
    }
    history.edges_begin_.push_back(static_cast<uint32_t>(history.edges_.size()));
    for (auto& entry : history.by_hlc_) entry.second = position[entry.second];
    return history;
}

bool InOrder::add(const Hlc& hlc, const Hlc* deps, size_t dep_count, bool other_copies, bool fenced) {
    // Equal hlcs (malformed) are ordered by msg_id, which the index does not do.
    if (other_copies || fenced || (!hlcs_.empty() && !(hlcs_.back() < hlc))) return false;
    for (size_t d = 0; d < dep_count; ++d) {
        // Most often a reply to the message just before.
        if (!hlcs_.empty() && hlcs_.back() == deps[d]) continue;
        if (!std::binary_search(hlcs_.begin(), hlcs_.end(), deps[d])) return false;
    }
    hlcs_.push_back(hlc);
    return true;
}

std::optional<uint32_t> History::find(const Hlc& hlc) const {
    auto found = std::lower_bound(by_hlc_.begin(), by_hlc_.end(), hlc,
                                  [](const auto& entry, const Hlc& h) { return entry.first < h; });
    if (found == by_hlc_.end() || found->first != hlc) return std::nullopt;
    return found->second;
}

CatchUp History::catch_up(const Hlc* seen, size_t count, std::pmr::memory_resource* memory,
                          std::optional<Hlc> since) const {
    CatchUp result(memory);
    std::pmr::vector<bool> in_past(messages_.size(), false, memory);
    std::pmr::vector<uint32_t> stack(memory);
    for (size_t s = 0; s < count; ++s) {
        std::optional<uint32_t> at = find(seen[s]);
        if (!at) {
            if (!since || !(seen[s] < *since)) result.not_here.push_back(seen[s]);
            continue;
        }
        if (!messages_[*at].delivered) result.not_delivered.push_back(seen[s]);
        if (!in_past[*at]) {
            in_past[*at] = true;
            stack.push_back(*at);
        }
    }
    while (!stack.empty()) {
        const uint32_t at = stack.back();
        stack.pop_back();
        for (uint32_t e = edges_begin_[at]; e < edges_begin_[at + 1]; ++e) {
            if (!in_past[edges_[e]]) {
                in_past[edges_[e]] = true;
                stack.push_back(edges_[e]);
            }
        }
    }
    for (uint32_t i = 0; i < messages_.size(); ++i)
        if (!in_past[i]) result.missed.push_back(i);
    return result;
}

}  // namespace causal::merge
