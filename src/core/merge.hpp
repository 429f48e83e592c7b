// The causal merge: copies of messages from any number of regions in, one
// history out, the same history whatever order or grouping they came in.
//
// A message names its causal past by the hlc values of its direct
// dependencies (deps). Merging is set union with the copy rule of
// src/core/copies.hpp (one msg_id, the smallest hlc's stamp), so it is
// associative, commutative and idempotent: that is what lets PostgreSQL split
// an aggregate across parallel workers and lets every region, whatever it
// received first, agree.
//
// PostgreSQL-free. Every allocation goes through the memory_resource given,
// so the extension can keep a state in an aggregate's memory context, where
// PostgreSQL accounts for it and frees it with the query.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hlc.hpp"

namespace causal::merge {

using MsgId = std::array<uint8_t, 16>;

// A fenced epoch, as causal.fences holds it.
struct Fence {
    std::string_view region;
    int64_t epoch = 0;
    Hlc fenced_at;
    std::optional<Hlc> lifted_at;  // when the region rejoined; none while it is out
};

// The orphan rule for one write on its own: `region` wrote it in `epoch`
// after that epoch was fenced. (Its causal descendants are orphans too; only
// the merge, which sees the deps graph, can tell those.)
bool fenced_write(const Fence& fence, std::string_view region, int64_t epoch, const Hlc& hlc);

// The same rule for a deletion, whose tombstone keeps the message's stamp
// and names only the region that deleted (`region`, written_by) and when, on
// its clock (`deleted_at`): within the fence's interval, after fenced_at and
// before lifted_at. A region that rejoins observes lifted_at before it takes
// writes again (causal.fences_register), so its deletions after the rejoin
// are stamped above it.
bool fenced_deletion(const Fence& fence, std::string_view region, const Hlc& deleted_at);

// One line of a merged history.
struct Message {
    MsgId msg_id;
    Hlc hlc;          // of the copy presented
    bool delivered;   // every dep is here and delivered
    bool concurrent;  // no causal path to or from the message before it
    bool orphan;      // a fenced write, or a descendant of one
};

// What a client that saw `seen` lacks, against one history.
struct CatchUp {
    explicit CatchUp(std::pmr::memory_resource* memory)
        : not_here(memory), not_delivered(memory), missed(memory) {}
    std::pmr::vector<Hlc> not_here;       // seen by the client, never arrived here
    std::pmr::vector<Hlc> not_delivered;  // arrived, but a dep of theirs has not
    std::pmr::vector<uint32_t> missed;    // indexes into the history, in its order
    bool behind() const { return !not_here.empty() || !not_delivered.empty(); }
};

class History {
public:
    explicit History(std::pmr::memory_resource* memory)
        : messages_(memory), edges_begin_(memory), edges_(memory), by_hlc_(memory) {}

    // In presentation order: position n is messages()[n - 1].
    const std::pmr::vector<Message>& messages() const { return messages_; }

    // The index of the message that `hlc` names: its own hlc, or the hlc of
    // a copy that lost to it under the winner rule.
    std::optional<uint32_t> find(const Hlc& hlc) const;

    // Everything outside the causal past of `seen` (the whole set the
    // client saw, or only its maximal messages: the answer is the same), and
    // what of `seen` this history cannot vouch for.
    //
    // With a cursor `since`: the client saw, besides `seen`, every message
    // with a copy below `since` (an hlc below which its region had every
    // message, fenced regions' too, when it read: causal.stable_hlc()). Then
    // only messages all of whose copies are at or after `since` can be
    // missed, and this history need hold just those (the tail a cursor
    // reads); a `seen` below `since` is covered by the cursor.
    CatchUp catch_up(const Hlc* seen, size_t count, std::pmr::memory_resource* memory,
                     std::optional<Hlc> since = std::nullopt) const;

private:
    friend class Input;
    std::pmr::vector<Message> messages_;
    // Resolved deps of messages_[i]: edges_[edges_begin_[i] .. edges_begin_[i + 1]).
    std::pmr::vector<uint32_t> edges_begin_;
    std::pmr::vector<uint32_t> edges_;
    std::pmr::vector<std::pair<Hlc, uint32_t>> by_hlc_;  // sorted by hlc
};

// Copies of messages, as given: the aggregate's transition state.
class Input {
public:
    static constexpr size_t kDepsFieldMax = 0xFFFF;            // per copy: the state's 16-bit count
    static constexpr size_t kMaxCopies = size_t{1} << 31;      // per group
    static constexpr size_t kMaxDepsTotal = 0xFFFFFFFFu;       // per group
    static constexpr size_t kMaxRegions = 0xFFFE;              // distinct names per group

    explicit Input(std::pmr::memory_resource* memory);

    // A copy of a message. No region or epoch (SQL NULL) makes a copy that no
    // fence can match. Throws Error{LimitExceeded} past the limits above.
    void add(const MsgId& msg_id, const Hlc& hlc, const Hlc* deps, size_t dep_count,
             std::optional<std::string_view> region, std::optional<int64_t> epoch);
    void add_all(const Input& other);
    size_t size() const { return copies_.size(); }

    // A flat byte form for moving a state between processes (parallel
    // aggregation). deserialize() adds what it reads, and throws
    // Error{InvalidBinary} on bytes serialize() did not write.
    size_t serialized_size() const;
    void serialize(uint8_t* out) const;
    void deserialize(const uint8_t* data, size_t size);

    // The one history of these copies, in `memory`. The state is left as it
    // was: it may take more rows and be merged again. With `since`, the
    // copies are the tail a cursor reads: a dep below `since` that is not
    // among them is the client's already, present and delivered.
    History merge(const std::vector<Fence>& fences, std::pmr::memory_resource* memory,
                  std::optional<Hlc> since = std::nullopt) const;

private:
    static constexpr uint16_t kNoRegion = 0xFFFF;
    struct Copy {
        MsgId msg_id;
        Hlc hlc;
        int64_t epoch;
        uint32_t deps_begin;
        uint16_t deps_count;
        uint16_t region;  // index into regions_, or kNoRegion
        bool has_epoch;
    };

    uint16_t intern(std::string_view region);
    void append_deps(const Hlc* deps, size_t count);
    bool copy_less(const Copy& a, const Copy& b) const;
    const Fence* fence_of(const Copy& copy, const std::vector<Fence>& fences) const;

    std::pmr::memory_resource* memory_;
    std::pmr::vector<Copy> copies_;
    std::pmr::vector<Hlc> deps_;
    std::pmr::vector<std::pmr::string> regions_;
    uint16_t last_region_ = kNoRegion;  // rows come in runs of one region
};

// The rows of one conversation as its (conversation, hlc) index returns
// them, ascending by hlc. While every row is plain (its only copy, written
// in no fenced epoch, each dep naming an earlier row), the history the merge
// makes of them is that very order with every message delivered: a reader
// can present rows as it reads them, and needs the merge only once a row is
// not plain. (Property-tested against Input::merge.)
class InOrder {
public:
    explicit InOrder(std::pmr::memory_resource* memory) : hlcs_(memory) {}

    // The next row, in index order. False: from this row on the order is the
    // merge's to decide (and this object is done).
    bool add(const Hlc& hlc, const Hlc* deps, size_t dep_count, bool other_copies, bool fenced);

private:
    std::pmr::vector<Hlc> hlcs_;  // every row's so far: ascending, so searched by bisection
};

}  // namespace causal::merge
