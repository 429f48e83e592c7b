// The causal merge on its own (merge.hpp): copies of messages from several
// regions in, one history out.
//
// Most tests build a random world: nodes in four regions send messages whose
// deps name earlier messages (mostly recent ones, so there are long chains as
// well as unrelated neighbours), clients retry in another region (the same
// msg_id with another hlc), every message reaches the merge as one to three
// identical copies, some never arrive (their descendants must be held), a few
// carry malformed deps (their own hlc, a later message's, the future), and
// two regions are fenced. The merge's answer is checked against a model built
// here from the rows alone, by brute force: the winner of a msg_id by
// scanning its copies, the causal past of every message by a search over the
// deps graph, held and orphan as "it or something in its past". The model
// never uses the merge's shortcuts (one walk in hlc order, concurrency from
// the direct deps only), so a wrong shortcut shows up as a disagreement.
//
// Fixed seeds, so a failure is reproducible as is; every failure names its seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <memory_resource>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"
#include "hlc.hpp"
#include "merge.hpp"

namespace {

using causal::Error;
using causal::ErrorKind;
using causal::Hlc;
using causal::merge::CatchUp;
using causal::merge::Fence;
using causal::merge::History;
using causal::merge::Input;
using causal::merge::Message;
using causal::merge::MsgId;

constexpr uint64_t kSeeds[] = {1, 2, 3, 20241126, 0xC0FFEE};
constexpr uint64_t kStartMs = 1732590000000;
// Fence times carry a node id no message has, so no message ever ties with
// one and which side of a fence it is on never rests on the tie-break. (The
// boundary itself has a test of its own.)
constexpr uint16_t kFenceNode = 999;
constexpr uint16_t kRetryNode = 998;
// Sorted, so a test can tell the region tie-break apart from input order.
const char* const kRegions[] = {"ap-south", "eu-west", "sa-east", "us-east"};

std::pmr::memory_resource* heap() { return std::pmr::new_delete_resource(); }

Hlc hlc_at(uint64_t ms, uint32_t logical, uint16_t node) {
    Hlc h;
    h.wall = Hlc::pack(ms, logical);
    h.node = node;
    return h;
}

std::string str(const Hlc& h) { return causal::to_string(h); }

MsgId id_of(uint8_t n) {
    MsgId id{};
    id[0] = 0x5a;
    id[15] = n;
    return id;
}

// Runs `fn`, which must throw causal::Error of `kind`.
template <typename Fn>
void expect_error(ErrorKind kind, const std::string& what, Fn fn) {
    try {
        fn();
        ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
        EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << what << ": " << e.what();
    }
}

// ---------------------------------------------------------------------------
// Rows and worlds

// One row as the aggregate gets it.
struct Row {
    MsgId msg_id{};
    Hlc hlc;
    std::vector<Hlc> deps;
    std::optional<std::string> region;  // nullopt: SQL NULL
    std::optional<int64_t> epoch;
};

void add(Input& in, const Row& row) {
    std::optional<std::string_view> region;
    if (row.region) region = *row.region;
    in.add(row.msg_id, row.hlc, row.deps.data(), row.deps.size(), region, row.epoch);
}

std::unique_ptr<Input> input_of(const std::vector<Row>& rows, std::pmr::memory_resource* memory = heap()) {
    auto in = std::make_unique<Input>(memory);
    for (const Row& row : rows) add(*in, row);
    return in;
}

std::vector<uint8_t> bytes_of(const Input& in) {
    std::vector<uint8_t> bytes(in.serialized_size());
    in.serialize(bytes.data());
    return bytes;
}

// What a parallel worker's partial state becomes on its way to the leader.
std::unique_ptr<Input> round_trip(const Input& in, std::pmr::memory_resource* memory) {
    const std::vector<uint8_t> bytes = bytes_of(in);
    auto out = std::make_unique<Input>(memory);
    out->deserialize(bytes.data(), bytes.size());
    return out;
}

struct World {
    std::vector<Row> copies;  // what the merge is given, in arrival order
    std::vector<Fence> fences;
    std::vector<Hlc> lost;    // sent, never arrived
};

World make_world(uint64_t seed, size_t sends = 160) {
    std::mt19937_64 rng(seed);
    auto below = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    auto uniform = [&] { return std::uniform_real_distribution<double>(0, 1)(rng); };
    auto chance = [&](double p) { return uniform() < p; };

    // Node n is in region n % 4, and its hlc values carry n: unique across
    // nodes, strictly increasing within one, as the clock makes them.
    constexpr int kNodes = 8;
    std::vector<uint64_t> last(kNodes + 1, 0);
    std::vector<int64_t> skew(kNodes + 1);
    for (auto& s : skew) s = static_cast<int64_t>(below(7)) - 3;
    uint64_t now = kStartMs;
    std::vector<Row> sent;
    for (size_t i = 0; i < sends; ++i) {
        now += below(3);  // often the same millisecond: the node id decides
        const int node = 1 + static_cast<int>(below(kNodes));
        Row row;
        if (!sent.empty() && chance(0.08)) {
            // A client retried, maybe in another region: same msg_id and
            // deps, a new hlc, usually larger (the smaller wins either way).
            const Row& first = sent[below(sent.size())];
            row.msg_id = first.msg_id;
            row.deps = first.deps;
        } else {
            for (auto& b : row.msg_id) b = static_cast<uint8_t>(rng());
            const size_t deps = below(4);
            for (size_t d = 0; d < deps && !sent.empty(); ++d) {
                // Often a reply to the latest message, else mostly recent ones.
                const size_t back = chance(0.3)   ? 1
                                    : chance(0.6) ? std::min(sent.size(), size_t{12})
                                                  : sent.size();
                // Sometimes a retry's hlc: a dep that names a losing copy.
                row.deps.push_back(sent[sent.size() - 1 - below(back)].hlc);
            }
        }
        uint64_t wall = std::max(Hlc::pack(static_cast<uint64_t>(static_cast<int64_t>(now) + skew[node]), 0),
                                 last[node] + 1);
        for (const Hlc& d : row.deps) wall = std::max(wall, d.wall + 1);
        last[node] = wall;
        row.hlc.wall = wall;
        row.hlc.node = static_cast<uint16_t>(node);
        // Mostly both; a few SQL NULLs, which no fence may match.
        const double kind = uniform();
        if (kind >= 0.03 && kind < 0.05) {
            row.region = kRegions[node % 4];
        } else if (kind >= 0.05 && kind < 0.07) {
            row.epoch = static_cast<int64_t>(below(3));
        } else if (kind >= 0.07) {
            row.region = kRegions[node % 4];
            row.epoch = static_cast<int64_t>(below(3));
        }
        sent.push_back(row);
    }

    // Malformed deps, which no well-behaved writer makes (the apply path
    // quarantines them) but a merge over arbitrary rows must survive.
    for (size_t i = 0; i < sent.size(); ++i) {
        if (!chance(0.02)) continue;
        Row& row = sent[i];
        Hlc bad = row.hlc;  // itself
        const size_t what = below(3);
        if (what == 1 && i + 1 < sent.size()) {
            bad = sent[i + 1 + below(sent.size() - i - 1)].hlc;  // a later message: with a dep back, a cycle
        } else if (what == 2) {
            bad.wall += 1 + below(1000);  // the future
        }
        row.deps.insert(row.deps.begin() + static_cast<std::ptrdiff_t>(below(row.deps.size() + 1)), bad);
    }

    World w;
    for (const Row& row : sent) {
        if (chance(0.04)) {
            w.lost.push_back(row.hlc);
            continue;
        }
        // The same row as several regions hold it.
        for (size_t c = 1 + below(3); c > 0; --c) w.copies.push_back(row);
    }
    std::shuffle(w.copies.begin(), w.copies.end(), rng);

    const uint64_t span = now - kStartMs + 1;
    auto at = [&](double fraction) {
        return hlc_at(kStartMs + static_cast<uint64_t>(static_cast<double>(span) * fraction), 0, kFenceNode);
    };
    const size_t r = below(4);
    Fence first{kRegions[r], 1, at(0.2 + 0.2 * uniform()), std::nullopt};
    if (chance(0.7)) first.lifted_at = at(0.5 + 0.2 * uniform());
    // Epoch 0 is also what the state keeps for a copy without an epoch:
    // those must still not match.
    Fence second{kRegions[(r + 1 + below(3)) % 4], 0, at(0.45 + 0.2 * uniform()), std::nullopt};
    if (chance(0.5)) second.lifted_at = at(0.8 + 0.1 * uniform());
    w.fences = {first, second};

    // A client told 5C004 by a region that was cut off and then fenced
    // retries in an active region: a later copy, by a node of its own, that
    // the merge presents instead of the fenced one.
    uint32_t retries = 0;
    std::vector<Row> late;
    for (const Row& c : w.copies) {
        const bool fenced = c.region && c.epoch && *c.region == first.region && *c.epoch == first.epoch &&
                            c.hlc > first.fenced_at;
        if (!fenced || !chance(0.5)) continue;
        Row retry = c;
        retry.hlc = hlc_at(c.hlc.physical_ms() + 1 + below(5), retries++, kRetryNode);
        retry.region = kRegions[(r + 1) % 4];
        retry.epoch = 0;
        late.push_back(retry);
    }
    w.copies.insert(w.copies.end(), late.begin(), late.end());
    std::shuffle(w.copies.begin(), w.copies.end(), rng);
    return w;
}

// ---------------------------------------------------------------------------
// The brute-force model

struct Model {
    std::map<MsgId, size_t> index;     // msg_id -> message
    // Per message: the copy it is presented as: the smallest hlc no fence
    // makes an orphan, else the smallest hlc (src/core/copies.hpp).
    std::vector<Row> winner;
    std::map<Hlc, size_t> named;       // every copy's hlc -> its message
    std::vector<std::vector<size_t>> deps;  // resolved: present, strictly below, another message
    std::vector<bool> bad;             // a dep that is missing or not below
    std::vector<std::vector<bool>> past;    // past[x][y]: y is in x's causal past
    // On a cycle of deps, or after one: never delivered, and presented by
    // its own place alone. Only copies with deps of their own can make one.
    std::vector<bool> unreached;
    std::vector<bool> held, fenced, orphan;
    // Where a message is shown: the latest place of anything in it and its
    // past, a fenced write's place being its region's lift (never before its
    // own hlc), an other's its hlc; nullopt: at the end (a fenced region
    // that has not rejoined).
    std::vector<std::optional<Hlc>> shown_at;

    static const Fence* fence_of(const Row& c, const std::vector<Fence>& fences) {
        const Fence* found = nullptr;
        for (const Fence& f : fences)
            if (c.region && c.epoch && *c.region == f.region && *c.epoch == f.epoch && c.hlc > f.fenced_at)
                found = &f;
        return found;
    }

    Model(const std::vector<Row>& copies, const std::vector<Fence>& fences) {
        std::map<MsgId, std::vector<Row>> by_id;
        for (const Row& c : copies) by_id[c.msg_id].push_back(c);
        for (auto& [id, list] : by_id) {
            // by hlc; equal hlcs (malformed) are the Conflicting test's
            std::sort(list.begin(), list.end(), [](const Row& a, const Row& b) { return a.hlc < b.hlc; });
            const Row* pick = nullptr;
            for (const Row& c : list)
                if (!pick && !fence_of(c, fences)) pick = &c;
            index.emplace(id, winner.size());
            winner.push_back(pick ? *pick : list.front());
        }
        for (const Row& c : copies) {
            auto [it, fresh] = named.emplace(c.hlc, index.at(c.msg_id));
            if (!fresh && it->second != index.at(c.msg_id))
                ADD_FAILURE() << "world bug: two messages with hlc " << str(c.hlc);
        }
        const size_t n = size();
        deps.resize(n);
        bad.assign(n, false);
        for (size_t x = 0; x < n; ++x) {
            for (const Hlc& d : winner[x].deps) {
                auto it = named.find(d);
                if (it == named.end() || !(d < winner[x].hlc) || it->second == x) {
                    bad[x] = true;
                } else {
                    deps[x].push_back(it->second);
                }
            }
        }
        past.assign(n, std::vector<bool>(n, false));
        for (size_t x = 0; x < n; ++x) {
            std::vector<size_t> stack(deps[x].begin(), deps[x].end());
            while (!stack.empty()) {
                const size_t y = stack.back();
                stack.pop_back();
                if (past[x][y]) continue;
                past[x][y] = true;
                stack.insert(stack.end(), deps[y].begin(), deps[y].end());
            }
        }
        unreached.assign(n, false);
        for (size_t x = 0; x < n; ++x)
            for (size_t y = 0; y < n; ++y)
                if ((y == x || past[x][y]) && past[y][y]) unreached[x] = true;
        std::vector<const Fence*> fence(n, nullptr);
        fenced.assign(n, false);
        for (size_t x = 0; x < n; ++x) {
            fence[x] = fence_of(winner[x], fences);
            fenced[x] = fence[x] != nullptr;
        }
        auto own_place = [&](size_t y) -> std::optional<Hlc> {
            if (!fenced[y]) return winner[y].hlc;
            if (!fence[y]->lifted_at) return std::nullopt;
            return std::max(*fence[y]->lifted_at, winner[y].hlc);
        };
        held.assign(n, false);
        orphan.assign(n, false);
        shown_at.assign(n, std::nullopt);
        for (size_t x = 0; x < n; ++x) {
            if (unreached[x]) {
                held[x] = true;
                orphan[x] = fenced[x];
                shown_at[x] = own_place(x);
                continue;
            }
            held[x] = bad[x];
            orphan[x] = fenced[x];
            std::optional<Hlc> at = own_place(x);
            for (size_t y = 0; y < n; ++y) {
                if (!past[x][y]) continue;
                held[x] = held[x] || bad[y];
                orphan[x] = orphan[x] || fenced[y];
                const std::optional<Hlc> theirs = own_place(y);
                if (!theirs) {
                    at.reset();
                } else if (at && *at < *theirs) {
                    at = theirs;
                }
            }
            shown_at[x] = at;
        }
    }

    size_t size() const { return winner.size(); }
    const Hlc& hlc(size_t x) const { return winner[x].hlc; }
    bool related(size_t a, size_t b) const { return past[a][b] || past[b][a]; }
    // `shown_at` as something to sort by: the end after every hlc.
    std::pair<bool, Hlc> key(size_t x) const {
        return shown_at[x] ? std::make_pair(false, *shown_at[x]) : std::make_pair(true, hlc(x));
    }
};

// Where each of the model's messages is in `history` (its index into
// messages()); fails unless the history has each of them exactly once.
std::vector<size_t> positions(const History& history, const Model& model) {
    std::vector<size_t> at(model.size(), SIZE_MAX);
    const auto& lines = history.messages();
    EXPECT_EQ(lines.size(), model.size()) << "not one line per msg_id";
    for (size_t p = 0; p < lines.size(); ++p) {
        auto it = model.index.find(lines[p].msg_id);
        if (it == model.index.end()) {
            ADD_FAILURE() << "position " << p + 1 << ": a msg_id that was never added";
        } else if (at[it->second] != SIZE_MAX) {
            ADD_FAILURE() << "position " << p + 1 << ": msg_id of " << str(lines[p].hlc) << " twice";
        } else {
            at[it->second] = p;
        }
    }
    return at;
}

// The inverse: which message is at each position.
std::vector<size_t> at_position(const std::vector<size_t>& positions) {
    std::vector<size_t> message(positions.size(), SIZE_MAX);
    for (size_t x = 0; x < positions.size(); ++x)
        if (positions[x] < message.size()) message[positions[x]] = x;
    return message;
}

std::string describe(const Message& m) {
    std::ostringstream out;
    out << str(m.hlc) << " delivered=" << m.delivered << " concurrent=" << m.concurrent
        << " orphan=" << m.orphan;
    return out.str();
}

// Field by field, naming the first difference.
::testing::AssertionResult same_history(const History& expected, const History& actual) {
    const auto& a = expected.messages();
    const auto& b = actual.messages();
    if (a.size() != b.size())
        return ::testing::AssertionFailure() << a.size() << " messages, then " << b.size();
    for (size_t p = 0; p < a.size(); ++p) {
        if (a[p].msg_id != b[p].msg_id || a[p].hlc != b[p].hlc || a[p].delivered != b[p].delivered ||
            a[p].concurrent != b[p].concurrent || a[p].orphan != b[p].orphan)
            return ::testing::AssertionFailure()
                   << "position " << p + 1 << ": " << describe(a[p]) << ", then " << describe(b[p]);
    }
    return ::testing::AssertionSuccess();
}

// Every hlc the world names resolves the same way in both.
::testing::AssertionResult same_lookups(const History& expected, const History& actual, const World& w) {
    std::vector<Hlc> probes = w.lost;
    for (const Row& c : w.copies) {
        probes.push_back(c.hlc);
        probes.insert(probes.end(), c.deps.begin(), c.deps.end());
    }
    for (const Hlc& h : probes)
        if (expected.find(h) != actual.find(h))
            return ::testing::AssertionFailure() << "find(" << str(h) << ") differs";
    return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// The example from the issue

TEST(MergeExample, TwoMessagesOfOneMillisecondFromTwoNodesAreConcurrentInEitherOrder) {
    // "Let's meet" from node A=1 and "How about 3pm?" from node B=2 in the
    // same millisecond with the same counter, neither seeing the other. M1
    // gets the larger msg_id, so the order cannot come from msg_ids.
    const Row m1{id_of(0xB1), hlc_at(1000, 0, 1), {}, std::string("eu-west"), 0};
    const Row m2{id_of(0x02), hlc_at(1000, 0, 2), {}, std::string("us-east"), 0};
    const std::optional<std::string> region_choices[] = {std::nullopt, std::string("eu-west"),
                                                         std::string("us-east")};
    int cases = 0;
    for (bool m2_first : {false, true}) {
        for (const auto& r1 : region_choices) {
            for (const auto& r2 : region_choices) {
                for (bool two_inputs : {false, true}) {
                    Row a = m1, b = m2;
                    a.region = r1;
                    b.region = r2;
                    if (m2_first) std::swap(a, b);
                    Input in(heap()), other(heap());
                    add(in, a);
                    add(two_inputs ? other : in, b);
                    in.add_all(other);
                    const History h = in.merge({}, heap());
                    SCOPED_TRACE(::testing::Message() << "M2 first " << m2_first << ", two inputs " << two_inputs);
                    ASSERT_EQ(h.messages().size(), 2u);
                    const Message& first = h.messages()[0];
                    const Message& second = h.messages()[1];
                    EXPECT_EQ(first.msg_id, m1.msg_id);
                    EXPECT_EQ(first.hlc, m1.hlc);
                    EXPECT_TRUE(first.delivered);
                    EXPECT_FALSE(first.concurrent) << "the first message has nothing before it";
                    EXPECT_FALSE(first.orphan);
                    EXPECT_EQ(second.msg_id, m2.msg_id);
                    EXPECT_EQ(second.hlc, m2.hlc);
                    EXPECT_TRUE(second.delivered);
                    EXPECT_TRUE(second.concurrent) << "no path between M1 and M2";
                    EXPECT_FALSE(second.orphan);
                    ++cases;
                }
            }
        }
    }
    EXPECT_EQ(cases, 36);

    // A reply to M2 from A comes after it and is not concurrent with it.
    const Row reply{id_of(0x03), hlc_at(1000, 1, 1), {m2.hlc}, std::string("eu-west"), 0};
    const History h = input_of({reply, m2, m1})->merge({}, heap());
    ASSERT_EQ(h.messages().size(), 3u);
    EXPECT_EQ(h.messages()[2].hlc, reply.hlc);
    EXPECT_TRUE(h.messages()[2].delivered);
    EXPECT_FALSE(h.messages()[2].concurrent);
}

// ---------------------------------------------------------------------------
// Randomized worlds

TEST(Merge, EachMessageOnceAsTheCopyRulePresentsItAndEveryCopyNamesIt) {
    size_t losing_copies = 0, lost = 0, presented_later = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> pos = positions(h, m);
        if (HasFailure()) return;
        for (size_t x = 0; x < m.size(); ++x)
            EXPECT_EQ(h.messages()[pos[x]].hlc, m.hlc(x)) << "not the copy the rule presents";
        std::map<MsgId, Hlc> smallest;
        for (const Row& c : w.copies) {
            auto [it, fresh] = smallest.emplace(c.msg_id, c.hlc);
            if (!fresh && c.hlc < it->second) it->second = c.hlc;
        }
        for (const auto& [id, least] : smallest) presented_later += least != m.hlc(m.index.at(id));
        for (const Row& c : w.copies) {
            const size_t x = m.index.at(c.msg_id);
            losing_copies += c.hlc != m.hlc(x);
            EXPECT_EQ(h.find(c.hlc), std::optional<uint32_t>(static_cast<uint32_t>(pos[x])))
                << "find(" << str(c.hlc) << "), a copy of " << str(m.hlc(x));
        }
        for (const Hlc& gone : w.lost) {
            if (m.named.count(gone)) continue;  // a retry's hlc, say
            ++lost;
            EXPECT_EQ(h.find(gone), std::nullopt) << str(gone);
        }
        if (HasFailure()) return;
    }
    EXPECT_GT(losing_copies, 10u) << "hardly any retries: a vacuous run";
    EXPECT_GT(lost, 10u);
    // A fenced region's copy lost to a later one of an active region.
    EXPECT_GT(presented_later, 5u) << "no retry after a fence: a vacuous run";
    std::cout << "[          ] " << presented_later << " messages presented by a later copy than their smallest\n";
}

TEST(Merge, SameHistoryWhateverTheOrderAndGroupingOfCopies) {
    // What a parallel aggregate does: rows split among workers in any order,
    // partial states sent as bytes, combined in any order, sometimes
    // deserialized straight into a state that already has rows.
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const History reference = input_of(w.copies)->merge(w.fences, heap());
        std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15);
        for (int trial = 0; trial < 12; ++trial) {
            SCOPED_TRACE(::testing::Message() << "trial " << trial);
            std::pmr::monotonic_buffer_resource arena;
            std::vector<Row> rows = w.copies;
            std::shuffle(rows.begin(), rows.end(), rng);
            const size_t parts = 1 + rng() % 6;
            std::vector<std::unique_ptr<Input>> states;
            for (size_t i = 0; i < parts; ++i) states.push_back(std::make_unique<Input>(&arena));
            for (const Row& row : rows) add(*states[rng() % parts], row);
            while (states.size() > 1) {
                const size_t into = rng() % states.size();
                size_t from = rng() % (states.size() - 1);
                if (from >= into) ++from;
                switch (rng() % 4) {
                case 0:
                    states[into]->add_all(*states[from]);
                    break;
                case 1:
                    states[into]->add_all(*round_trip(*states[from], &arena));
                    break;
                case 2: {
                    const std::vector<uint8_t> bytes = bytes_of(*states[from]);
                    states[into]->deserialize(bytes.data(), bytes.size());
                    break;
                }
                default:
                    states[into] = round_trip(*states[into], &arena);
                    states[into]->add_all(*states[from]);
                    break;
                }
                states.erase(states.begin() + static_cast<std::ptrdiff_t>(from));
            }
            EXPECT_EQ(states[0]->size(), w.copies.size());
            const History h = states[0]->merge(w.fences, &arena);
            EXPECT_TRUE(same_history(reference, h));
            EXPECT_TRUE(same_lookups(reference, h, w));
            if (HasFailure()) return;
        }
    }
}

TEST(Merge, ConflictingCopiesOfOneHlcAreResolvedByContentNotByArrival) {
    // Malformed, but possible: one msg_id and hlc with different regions,
    // epochs or deps (a row edited by hand in one region), and two msg_ids
    // with one hlc. Which copy wins is for the merge to decide; that every
    // order and grouping gets the same answer is what is checked.
    const Hlc t0 = hlc_at(5000, 0, 1), t1 = hlc_at(5001, 0, 2), t2 = hlc_at(5002, 0, 3);
    const Hlc t3 = hlc_at(5003, 0, 4), t4 = hlc_at(5004, 0, 1);
    const MsgId a = id_of(1), b = id_of(2), c = id_of(3), d = id_of(4), e = id_of(5);
    const std::string eu = "eu-west", us = "us-east";
    const std::vector<Row> rows = {
        {a, t0, {}, eu, 1},
        {b, t1, {t0}, eu, 1},
        {b, t1, {t0}, us, 1},        // another region
        {b, t1, {t0}, std::nullopt, 1},
        {b, t1, {t0}, eu, std::nullopt},
        {b, t1, {t0}, eu, 2},        // another epoch
        {b, t1, {}, eu, 1},          // other deps
        {b, t1, {t4}, eu, 1},        // a dep in its future
        {c, t2, {t1}, us, 0},
        {d, t3, {t2}, us, 0},
        {e, t3, {t1}, eu, 1},        // d's hlc, another msg_id
        {e, t4, {t1}, eu, 1},
    };
    // eu-west epoch 1 fenced before b: whether b is an orphan depends on
    // which of its copies wins, so the fence makes that visible too.
    const std::vector<Fence> fences = {{"eu-west", 1, t0, std::nullopt}};
    const History reference = input_of(rows)->merge(fences, heap());
    ASSERT_EQ(reference.messages().size(), 5u);
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<Row> shuffled = rows;
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        Input one(heap()), two(heap());
        const size_t cut = rng() % (shuffled.size() + 1);
        for (size_t i = 0; i < shuffled.size(); ++i) add(i < cut ? one : two, shuffled[i]);
        if (trial % 2) {
            two.add_all(*round_trip(one, heap()));
        } else {
            one.add_all(two);
        }
        const History h = (trial % 2 ? two : one).merge(fences, heap());
        ASSERT_TRUE(same_history(reference, h)) << "trial " << trial;
        for (const Hlc& t : {t0, t1, t2, t3, t4}) ASSERT_EQ(reference.find(t), h.find(t)) << str(t);
    }
    for (const Message& m : reference.messages()) EXPECT_NE(m.hlc, t4) << "e's winner is its smaller hlc";
}

TEST(Merge, MergingAgainWhatItAlreadyHasChangesNothing) {
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const History reference = input_of(w.copies)->merge(w.fences, heap());
        std::mt19937_64 rng(seed + 17);
        for (int trial = 0; trial < 8; ++trial) {
            SCOPED_TRACE(::testing::Message() << "trial " << trial);
            std::pmr::monotonic_buffer_resource arena;
            auto in = input_of(w.copies, &arena);
            // The state is left as it was: merging twice answers twice alike.
            EXPECT_TRUE(same_history(reference, in->merge(w.fences, &arena)));
            std::vector<Row> again;
            for (const Row& row : w.copies)
                if (rng() % 3 == 0) again.push_back(row);
            switch (trial % 4) {
            case 0:
                for (const Row& row : again) add(*in, row);
                break;
            case 1:
                in->add_all(*input_of(again, &arena));
                break;
            case 2:
                in->add_all(*round_trip(*input_of(again, &arena), &arena));
                break;
            default:
                in->add_all(*in);  // the union with itself
                in->add_all(*round_trip(*in, &arena));
                break;
            }
            const History h = in->merge(w.fences, &arena);
            EXPECT_TRUE(same_history(reference, h));
            EXPECT_TRUE(same_lookups(reference, h, w));
            if (HasFailure()) return;
        }
    }
}

TEST(Merge, NeverBeforeADepOtherwiseByWhereItIsShown) {
    size_t edges = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> pos = positions(h, m);
        if (HasFailure()) return;
        for (size_t x = 0; x < m.size(); ++x) {
            for (size_t y : m.deps[x]) {
                ++edges;
                EXPECT_LT(pos[y], pos[x]) << str(m.hlc(x)) << " before its dep " << str(m.hlc(y));
            }
        }
        // By where each is shown (its hlc, or later for orphans and what
        // follows a message presented by a later copy).
        const std::vector<size_t> order = at_position(pos);
        for (size_t p = 1; p < order.size(); ++p)
            EXPECT_LE(m.key(order[p - 1]), m.key(order[p])) << "not by where it is shown at " << p + 1;
        if (HasFailure()) return;
    }
    EXPECT_GT(edges, 300u);
}

TEST(Merge, HeldExactlyWhenItOrItsPastLacksADep) {
    size_t held = 0, held_by_ancestor = 0, delivered = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> pos = positions(h, m);
        if (HasFailure()) return;
        for (size_t x = 0; x < m.size(); ++x) {
            EXPECT_EQ(h.messages()[pos[x]].delivered, !m.held[x])
                << str(m.hlc(x)) << (m.bad[x] ? " has a missing or malformed dep" : "");
            held += m.held[x];
            held_by_ancestor += m.held[x] && !m.bad[x];
            delivered += !m.held[x];
        }
        if (HasFailure()) return;
    }
    EXPECT_GT(held_by_ancestor, 10u) << "held only for their own deps: a vacuous run";
    EXPECT_GT(held, held_by_ancestor);
    EXPECT_GT(delivered, 100u);
}

TEST(Merge, ConcurrentExactlyWhenNoPathToOrFromThePreviousMessage) {
    size_t concurrent = 0, related = 0, related_not_direct = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> order = at_position(positions(h, m));
        if (HasFailure()) return;
        ASSERT_FALSE(h.messages().empty());
        EXPECT_FALSE(h.messages()[0].concurrent) << "the first message has nothing before it";
        for (size_t p = 1; p < order.size(); ++p) {
            const size_t a = order[p - 1], b = order[p];
            const bool expected = !m.related(a, b);
            EXPECT_EQ(h.messages()[p].concurrent, expected)
                << "position " << p + 1 << ": " << str(m.hlc(b)) << " after " << str(m.hlc(a));
            concurrent += expected;
            related += !expected;
            related_not_direct += !expected && std::count(m.deps[b].begin(), m.deps[b].end(), a) == 0;
        }
        if (HasFailure()) return;
    }
    EXPECT_GT(concurrent, 100u);
    EXPECT_GT(related, 100u);
    // The order extends the deps graph, so the previous message can only be
    // in the past through a direct dep; the model did not assume that.
    EXPECT_EQ(related_not_direct, 0u);
}

TEST(Merge, OrphansAreFencedWritesAndEverythingThatDependsOnThem) {
    size_t fenced = 0, descendants = 0, before_fence = 0, other_epoch = 0, no_epoch = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> pos = positions(h, m);
        if (HasFailure()) return;
        for (size_t x = 0; x < m.size(); ++x) {
            EXPECT_EQ(h.messages()[pos[x]].orphan, m.orphan[x])
                << str(m.hlc(x)) << (m.fenced[x] ? " is a fenced write" : "");
            fenced += m.fenced[x];
            descendants += m.orphan[x] && !m.fenced[x];
            // The writes that are not orphans by themselves, for the vacuity
            // checks: the fenced region before the fence, in another epoch,
            // or without an epoch.
            const Row& r = m.winner[x];
            for (const Fence& f : w.fences) {
                if (!r.region || *r.region != f.region || m.orphan[x]) continue;
                if (!r.epoch) {
                    no_epoch += r.hlc > f.fenced_at;
                } else if (*r.epoch == f.epoch) {
                    before_fence += r.hlc < f.fenced_at;
                } else {
                    other_epoch += r.hlc > f.fenced_at;
                }
            }
        }
        if (HasFailure()) return;
    }
    EXPECT_GT(fenced, 10u);
    EXPECT_GT(descendants, 10u);
    EXPECT_GT(before_fence, 5u);
    EXPECT_GT(other_epoch, 10u);
    EXPECT_GT(no_epoch, 0u);
}

TEST(Merge, OrphansAreShownWhereTheirRegionRejoinedOrAtTheEnd) {
    // Every message in order of where it is shown. A non-orphan is shown at
    // its hlc (or after a dep presented by a later copy); an orphan where the
    // last of the fenced writes in its past rejoined, or at its own hlc if
    // that is later (a reply written after the rejoin is shown when it was
    // written); at the end if one of them has not rejoined. Among messages
    // shown at one place, deps come first (NeverBeforeADep...).
    size_t at_lift = 0, at_end = 0, after_lift = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> order = at_position(positions(h, m));
        if (HasFailure()) return;
        for (size_t p = 1; p < order.size(); ++p) {
            if (m.key(order[p - 1]) <= m.key(order[p])) continue;
            const size_t x = order[p];
            ADD_FAILURE() << "position " << p + 1 << ": " << str(m.hlc(x))
                          << (m.orphan[x] ? " (orphan, shown at " : " (shown at ")
                          << (m.shown_at[x] ? str(*m.shown_at[x]) : "the end") << ") after "
                          << str(m.hlc(order[p - 1])) << ", shown later";
            return;
        }
        for (size_t x = 0; x < m.size(); ++x) {
            if (!m.orphan[x]) continue;
            if (!m.shown_at[x]) ++at_end;
            else if (*m.shown_at[x] == m.hlc(x)) ++after_lift;
            else ++at_lift;
        }
    }
    EXPECT_GT(at_lift, 5u);
    EXPECT_GT(at_end, 5u);
    EXPECT_GT(after_lift, 5u);
}

// ---------------------------------------------------------------------------
// Fences, one case at a time

TEST(MergeFences, TheBoundaryTheEpochTheRegionAndNulls) {
    const Hlc fenced_at = hlc_at(2000, 0, 1);
    const std::vector<Fence> fences = {{"eu-west", 1, fenced_at, std::nullopt},
                                       {"", 0, fenced_at, std::nullopt}};
    struct Case {
        const char* what;
        std::optional<std::string> region;
        std::optional<int64_t> epoch;
        Hlc hlc;
        bool orphan;
    };
    const Case cases[] = {
        {"before the fence", "eu-west", 1, hlc_at(1999, 9, 1), false},
        {"at the very moment of the fence", "eu-west", 1, fenced_at, false},
        {"right after the fence", "eu-west", 1, hlc_at(2000, 0, 2), true},
        {"later", "eu-west", 1, hlc_at(9000, 0, 1), true},
        {"another epoch", "eu-west", 2, hlc_at(9000, 0, 1), false},
        {"another region", "us-east", 1, hlc_at(9000, 0, 1), false},
        {"a region that only starts like it", "eu-west-2", 1, hlc_at(9000, 0, 1), false},
        {"no epoch", "eu-west", std::nullopt, hlc_at(9000, 0, 1), false},
        // An absent epoch is kept as 0 and an absent region is not "":
        // neither may match the fence of region "" epoch 0.
        {"region \"\", no epoch", "", std::nullopt, hlc_at(9000, 0, 1), false},
        {"no region, epoch 0", std::nullopt, 0, hlc_at(9000, 0, 1), false},
        {"no region, no epoch", std::nullopt, std::nullopt, hlc_at(9000, 0, 1), false},
        {"region \"\", epoch 0", "", 0, hlc_at(9000, 0, 1), true},
    };
    for (const Case& c : cases) {
        if (c.region) {
            EXPECT_EQ(causal::merge::fenced_write(fences[0], *c.region, c.epoch.value_or(-1), c.hlc) ||
                          causal::merge::fenced_write(fences[1], *c.region, c.epoch.value_or(-1), c.hlc),
                      c.orphan)
                << c.what;
        }
        const Row row{id_of(1), c.hlc, {}, c.region, c.epoch};
        const Row reply{id_of(2), hlc_at(9999, 0, 3), {c.hlc}, std::string("us-east"), 1};
        const History h = input_of({row, reply})->merge(fences, heap());
        ASSERT_EQ(h.messages().size(), 2u) << c.what;
        EXPECT_EQ(h.messages()[0].orphan, c.orphan) << c.what;
        EXPECT_EQ(h.messages()[1].orphan, c.orphan) << c.what << ": its reply";
        EXPECT_TRUE(h.messages()[1].delivered) << c.what;
    }
}

TEST(MergeFences, AWorkedExample) {
    // eu-west, epoch 1, fenced at 2000 and back at 5000. b is its write in
    // the split; d replies to b before the rejoin, f to d after it; g is
    // eu-west's write in its new epoch; the rest are us-east.
    const Row a{id_of(1), hlc_at(1000, 0, 1), {}, std::string("us-east"), 1};
    const Row b{id_of(2), hlc_at(2500, 0, 2), {a.hlc}, std::string("eu-west"), 1};
    const Row c{id_of(3), hlc_at(3000, 0, 1), {a.hlc}, std::string("us-east"), 1};
    const Row d{id_of(4), hlc_at(3500, 0, 1), {b.hlc}, std::string("us-east"), 1};
    const Row g{id_of(5), hlc_at(4000, 0, 2), {}, std::string("eu-west"), 2};
    const Row e{id_of(6), hlc_at(6000, 0, 1), {c.hlc}, std::string("us-east"), 1};
    const Row f{id_of(7), hlc_at(7000, 0, 1), {d.hlc}, std::string("us-east"), 1};
    const std::vector<Row> rows = {f, e, d, c, b, a, g};
    Fence fence{"eu-west", 1, hlc_at(2000, 0, kFenceNode), hlc_at(5000, 0, kFenceNode)};
    auto hlcs = [](const History& h) {
        std::vector<Hlc> out;
        for (const Message& m : h.messages()) out.push_back(m.hlc);
        return out;
    };
    auto orphans = [](const History& h) {
        std::vector<bool> out;
        for (const Message& m : h.messages()) out.push_back(m.orphan);
        return out;
    };
    const History lifted = input_of(rows)->merge({fence}, heap());
    EXPECT_EQ(hlcs(lifted), (std::vector<Hlc>{a.hlc, c.hlc, g.hlc, b.hlc, d.hlc, e.hlc, f.hlc}));
    EXPECT_EQ(orphans(lifted), (std::vector<bool>{false, false, false, true, true, false, true}));
    fence.lifted_at.reset();
    const History out = input_of(rows)->merge({fence}, heap());
    EXPECT_EQ(hlcs(out), (std::vector<Hlc>{a.hlc, c.hlc, g.hlc, e.hlc, b.hlc, d.hlc, f.hlc}));
    EXPECT_EQ(orphans(out), (std::vector<bool>{false, false, false, false, true, true, true}));
    // Without the fence, plain hlc order.
    const History none = input_of(rows)->merge({}, heap());
    EXPECT_EQ(hlcs(none), (std::vector<Hlc>{a.hlc, b.hlc, c.hlc, d.hlc, g.hlc, e.hlc, f.hlc}));
    for (const Message& m : none.messages()) EXPECT_FALSE(m.orphan);
}

// ---------------------------------------------------------------------------
// Bad input

TEST(MergeBadInput, DepsNotBelowTheirMessageAndCyclesAreHeld) {
    const Hlc ha = hlc_at(1000, 0, 1), hb = hlc_at(1001, 0, 1), hc = hlc_at(1002, 0, 1);
    const Hlc hd = hlc_at(1003, 0, 1), he = hlc_at(1004, 0, 1), hf = hlc_at(1005, 0, 1);
    const Hlc hg = hlc_at(1006, 0, 1), hh = hlc_at(1007, 0, 1), hi = hlc_at(1008, 0, 1);
    const Hlc hj = hlc_at(1009, 0, 1), hi_retry = hlc_at(1020, 0, 2);
    const std::vector<Row> rows = {
        {id_of(1), ha, {ha}, std::nullopt, std::nullopt},                    // itself
        {id_of(2), hb, {hlc_at(5000, 0, 1)}, std::nullopt, std::nullopt},    // the future, never here
        {id_of(3), hc, {hd}, std::nullopt, std::nullopt},                    // c and d: a cycle
        {id_of(4), hd, {hc}, std::nullopt, std::nullopt},
        {id_of(5), he, {hd}, std::nullopt, std::nullopt},                    // after the cycle
        {id_of(6), hf, {}, std::nullopt, std::nullopt},
        {id_of(7), hg, {hf, hh}, std::nullopt, std::nullopt},                // a later message that is here
        {id_of(8), hh, {hf}, std::nullopt, std::nullopt},
        {id_of(9), hi, {}, std::nullopt, std::nullopt},
        // A losing copy's hlc that is above j, though its winner is below:
        // the dep is still not below j.
        {id_of(10), hj, {hi_retry}, std::nullopt, std::nullopt},
    };
    const bool delivered[] = {false, false, false, false, false, true, false, true, true, false};
    std::vector<Row> shuffled = rows;
    shuffled.push_back({id_of(9), hi_retry, {}, std::nullopt, std::nullopt});
    std::mt19937_64 rng(11);
    for (int trial = 0; trial < 20; ++trial) {
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        const History h = input_of(shuffled)->merge({}, heap());
        ASSERT_EQ(h.messages().size(), rows.size());
        EXPECT_EQ(h.find(hi_retry), std::optional<uint32_t>(8));
        for (size_t i = 0; i < rows.size(); ++i) {
            // Nothing moves: the malformed deps are not part of the order.
            EXPECT_EQ(h.messages()[i].hlc, rows[i].hlc);
            EXPECT_EQ(h.messages()[i].delivered, delivered[i]) << str(rows[i].hlc);
        }
        // Only the good deps link neighbours: d on c, e on d, g on f. g's
        // dep on h is not below g, so it is no path: h is concurrent with g.
        const bool concurrent[] = {false, true, true, false, false, true, false, true, true, true};
        for (size_t i = 0; i < rows.size(); ++i)
            EXPECT_EQ(h.messages()[i].concurrent, concurrent[i]) << str(rows[i].hlc);
        if (HasFailure()) return;
    }
}

TEST(MergeBadInput, AnEmptyInputMergesToAnEmptyHistory) {
    Input in(heap());
    const History h = in.merge({{"eu-west", 1, hlc_at(1, 0, 1), std::nullopt}}, heap());
    EXPECT_TRUE(h.messages().empty());
    EXPECT_EQ(h.find(hlc_at(1, 0, 1)), std::nullopt);
    const Hlc seen = hlc_at(5, 0, 1);
    const CatchUp c = h.catch_up(&seen, 1, heap());
    EXPECT_EQ(c.not_here, (std::pmr::vector<Hlc>{seen}));
    EXPECT_TRUE(c.missed.empty());
    EXPECT_TRUE(c.behind());
    EXPECT_FALSE(h.catch_up(nullptr, 0, heap()).behind());
    // Empty states travel and combine too.
    auto back = round_trip(in, heap());
    EXPECT_EQ(back->size(), 0u);
    back->add_all(in);
    EXPECT_TRUE(back->merge({}, heap()).messages().empty());
}

TEST(MergeBadInput, MoreThanMaxDepsIsALimitAndLeavesTheStateAsItWas) {
    std::vector<Hlc> deps(Input::kDepsFieldMax + 1);
    for (size_t i = 0; i < deps.size(); ++i) deps[i] = hlc_at(1000 + i / 4, static_cast<uint32_t>(i % 4), 1);
    const Hlc mine = hlc_at(900000, 0, 2);
    Input in(heap());
    const Row first{id_of(1), hlc_at(1000, 0, 1), {}, std::string("eu-west"), 1};
    add(in, first);
    expect_error(ErrorKind::LimitExceeded, "kDepsFieldMax + 1 deps",
                 [&] { in.add(id_of(2), mine, deps.data(), deps.size(), std::string_view("eu-west"), 1); });
    EXPECT_EQ(in.size(), 1u);
    // Exactly the limit is fine, and survives the byte form (the count
    // is kept in 16 bits). The one dep that is here is deps[0].
    in.add(id_of(2), mine, deps.data(), Input::kDepsFieldMax, std::string_view("eu-west"), 1);
    const auto back = round_trip(in, heap());
    for (const Input* state : {&in, back.get()}) {
        const History h = state->merge({}, heap());
        ASSERT_EQ(h.messages().size(), 2u);
        EXPECT_EQ(h.messages()[1].hlc, mine);
        EXPECT_FALSE(h.messages()[1].delivered) << "its other deps are missing";
        EXPECT_FALSE(h.messages()[1].concurrent) << "deps[0] is the message before it";
    }
}

// A small state with everything in it: two regions, no region, no epoch,
// deps present and missing, a losing copy.
std::vector<uint8_t> small_state() {
    const Hlc h1 = hlc_at(1000, 0, 1), h2 = hlc_at(1001, 0, 2), h3 = hlc_at(1002, 0, 1);
    Input in(heap());
    for (const Row& row : std::vector<Row>{
             {id_of(1), h1, {}, std::string("eu-west"), 1},
             {id_of(2), h2, {h1, hlc_at(1, 0, 9)}, std::string("us-east"), std::nullopt},
             {id_of(1), h3, {}, std::nullopt, 2},
             {id_of(3), hlc_at(1003, 0, 3), {h3, h2}, std::nullopt, std::nullopt}})
        add(in, row);
    return bytes_of(in);
}

TEST(MergeBytes, SerializeWritesExactlyItsSizeAndRoundTrips) {
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed, 60);
        auto in = input_of(w.copies);
        const size_t size = in->serialized_size();
        // Twice, over different fillers: every byte inside is written and
        // none after.
        std::vector<uint8_t> x(size + 64, 0xAA), y(size + 64, 0x55);
        in->serialize(x.data());
        in->serialize(y.data());
        EXPECT_TRUE(std::equal(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(size), y.begin()))
            << "bytes left unwritten (padding?)";
        EXPECT_TRUE(std::all_of(x.begin() + static_cast<std::ptrdiff_t>(size), x.end(), [](uint8_t v) { return v == 0xAA; }))
            << "written past serialized_size()";
        auto back = round_trip(*in, heap());
        EXPECT_EQ(back->size(), in->size());
        EXPECT_EQ(back->serialized_size(), size);
        EXPECT_TRUE(same_history(in->merge(w.fences, heap()), back->merge(w.fences, heap())));
    }
}

TEST(MergeBytes, EveryTruncationAndTrailingGarbageIsInvalidBinary) {
    const std::vector<uint8_t> bytes = small_state();
    for (size_t length = 0; length < bytes.size(); ++length) {
        // An exact-size copy, so the bytes past `length` are not there at all.
        const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
        Input in(heap());
        expect_error(ErrorKind::InvalidBinary, "the first " + std::to_string(length) + " bytes",
                     [&] { in.deserialize(cut.data(), cut.size()); });
    }
    for (size_t extra : {1, 15, 16, 49}) {
        std::vector<uint8_t> longer = bytes;
        longer.resize(bytes.size() + extra, 0);
        Input in(heap());
        expect_error(ErrorKind::InvalidBinary, std::to_string(extra) + " bytes too many",
                     [&] { in.deserialize(longer.data(), longer.size()); });
    }
    Input in(heap());
    in.deserialize(bytes.data(), bytes.size());
    EXPECT_EQ(in.size(), 4u);
}

TEST(MergeBytes, FlippedBytesAreInvalidBinaryOrHarmless) {
    // Header bytes (magic, counts, region names) mostly, but anywhere: a flip
    // must be refused as InvalidBinary, or read as some state that then
    // merges like any other.
    const std::vector<uint8_t> bytes = small_state();
    const size_t header = 4 + 4 + (4 + 7) * 2 + 8 + 8;  // two regions, seven letters each
    std::mt19937_64 rng(99);
    size_t refused = 0, accepted = 0;
    for (int trial = 0; trial < 4000; ++trial) {
        std::vector<uint8_t> flipped = bytes;
        const size_t at = trial % 4 == 3 ? rng() % flipped.size() : rng() % header;
        if (trial % 2) {
            flipped[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        } else {
            flipped[at] = static_cast<uint8_t>(rng());
        }
        Input in(heap());
        try {
            in.deserialize(flipped.data(), flipped.size());
        } catch (const Error& e) {
            EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(ErrorKind::InvalidBinary))
                << "byte " << at << ": " << e.what();
            ++refused;
            continue;
        }
        ++accepted;
        const History h = in.merge({{"eu-west", 1, hlc_at(1000, 0, 1), std::nullopt}}, heap());
        EXPECT_LE(h.messages().size(), in.size());
        for (const Message& m : h.messages()) {
            const Hlc seen = m.hlc;
            (void)h.catch_up(&seen, 1, heap());
        }
    }
    EXPECT_GT(refused, 1000u);
    EXPECT_GT(accepted, 100u);
}

// Found writing these tests: deserialize checks the counts against the length
// as copy_count * 49 + dep_count * 16 in 64 bits, so a dep count of 2^60 plus
// the real one passes (2^60 * 16 wraps to 0); every copy's deps then count as
// inside the dep array however far past the end they point, and are copied
// from there. Here the copy's deps start one Hlc past the real ones, i.e.
// right after the last byte it was given: deserialize reads 16 bytes it was
// not given (in PostgreSQL: past the bytea) instead of throwing
// InvalidBinary. (A deps_begin near 2^32 reads 64 GB away and crashes.)
TEST(MergeBytes, ADepCountThatWrapsAroundIsInvalidBinary) {
    Input in(heap());
    const Hlc dep = hlc_at(1000, 0, 1);
    in.add(id_of(1), hlc_at(2000, 0, 1), &dep, 1, std::nullopt, std::nullopt);
    std::vector<uint8_t> bytes = bytes_of(in);
    // The layout as serialize() writes it: magic, region count (0), copy
    // count, dep count, one copy of 49 bytes (msg_id, hlc, epoch, deps_begin,
    // deps_count, region, has_epoch), one dep.
    ASSERT_EQ(bytes.size(), 4u + 4 + 8 + 8 + 49 + 16) << "the byte form changed; update this test";
    const size_t dep_count_at = 16, deps_begin_at = 24 + 16 + 16 + 8;
    uint64_t dep_count;
    std::memcpy(&dep_count, bytes.data() + dep_count_at, 8);
    ASSERT_EQ(dep_count, 1u);
    dep_count += uint64_t{1} << 60;
    std::memcpy(bytes.data() + dep_count_at, &dep_count, 8);
    const uint32_t deps_begin = 1;
    std::memcpy(bytes.data() + deps_begin_at, &deps_begin, 4);
    // What lies beyond the bytes handed over: a recognizable hlc, inside our
    // own buffer so that a wrong read is seen rather than a crash.
    const size_t given = bytes.size();
    const Hlc beyond = hlc_at(777, 7, 7);
    bytes.resize(given + sizeof(Hlc));
    std::memcpy(bytes.data() + given, &beyond, sizeof beyond);
    Input out(heap());
    try {
        out.deserialize(bytes.data(), given);
        ADD_FAILURE() << "accepted a dep count of 2^60 + 1 in a state of " << given << " bytes";
        // Its one dep, as it now has it, came from past the end.
        const std::vector<uint8_t> again = bytes_of(out);
        ASSERT_GE(again.size(), sizeof(Hlc));
        Hlc read;
        std::memcpy(&read, again.data() + again.size() - sizeof(Hlc), sizeof read);
        EXPECT_NE(read, beyond) << "its dep was read from the " << sizeof(Hlc)
                                << " bytes after the end of what it was given";
    } catch (const Error& e) {
        EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(ErrorKind::InvalidBinary)) << e.what();
    }
}

// ---------------------------------------------------------------------------
// Catching up

TEST(MergeCatchUp, MissedIsEverythingOutsideTheCausalPastOfWhatWasSeen) {
    size_t checked = 0, with_held = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History h = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> pos = positions(h, m);
        const std::vector<size_t> order = at_position(pos);
        if (HasFailure()) return;
        // The other hlcs each message goes by: its losing copies.
        std::vector<std::vector<Hlc>> aliases(m.size());
        for (const auto& [hlc, x] : m.named)
            if (hlc != m.hlc(x)) aliases[x].push_back(hlc);
        std::mt19937_64 rng(seed * 31 + 1);
        for (int trial = 0; trial < 30; ++trial) {
            SCOPED_TRACE(::testing::Message() << "trial " << trial);
            // A client's view: a few messages and their whole causal past.
            std::vector<bool> seen(m.size(), false);
            for (size_t k = trial % 6; k > 0; --k) {
                const size_t x = rng() % m.size();
                seen[x] = true;
                for (size_t y = 0; y < m.size(); ++y) seen[y] = seen[y] || m.past[x][y];
            }
            std::vector<uint32_t> expected_missed;
            for (size_t p = 0; p < order.size(); ++p)
                if (!seen[order[p]]) expected_missed.push_back(static_cast<uint32_t>(p));
            std::vector<size_t> all, heads;
            std::set<size_t> held_seen, held_heads;
            for (size_t x = 0; x < m.size(); ++x) {
                if (!seen[x]) continue;
                all.push_back(x);
                bool head = true;
                for (size_t z = 0; z < m.size() && head; ++z) head = !(seen[z] && m.past[z][x]);
                if (head) heads.push_back(x);
                if (m.held[x]) {
                    held_seen.insert(x);
                    if (head) held_heads.insert(x);
                }
            }
            with_held += !held_seen.empty();

            auto check = [&](const std::vector<size_t>& given, const std::set<size_t>& held, bool as_alias,
                             const std::vector<Hlc>& not_here, const char* what) {
                SCOPED_TRACE(what);
                std::vector<Hlc> hlcs;
                for (size_t x : given) {
                    // A losing copy's hlc names the winner: seeing it is seeing the message.
                    hlcs.push_back(as_alias && !aliases[x].empty() ? aliases[x][rng() % aliases[x].size()]
                                                                   : m.hlc(x));
                }
                hlcs.insert(hlcs.end(), not_here.begin(), not_here.end());
                std::shuffle(hlcs.begin(), hlcs.end(), rng);
                const CatchUp c = h.catch_up(hlcs.data(), hlcs.size(), heap());
                EXPECT_EQ(std::vector<uint32_t>(c.missed.begin(), c.missed.end()), expected_missed);
                EXPECT_EQ(std::set<Hlc>(c.not_here.begin(), c.not_here.end()),
                          std::set<Hlc>(not_here.begin(), not_here.end()));
                EXPECT_EQ(c.not_here.size(), not_here.size());
                std::set<size_t> not_delivered;
                for (const Hlc& hlc : c.not_delivered) {
                    auto it = m.named.find(hlc);
                    if (it == m.named.end()) {
                        ADD_FAILURE() << str(hlc) << " is not delivered but not here either";
                    } else {
                        not_delivered.insert(it->second);
                    }
                }
                EXPECT_EQ(not_delivered, held);
                EXPECT_EQ(c.not_delivered.size(), held.size());
                EXPECT_EQ(c.behind(), !not_here.empty() || !held.empty());
                ++checked;
            };
            check(all, held_seen, false, {}, "the whole view");
            check(heads, held_heads, false, {}, "its heads");
            check(all, held_seen, true, {}, "the view by losing copies' hlcs");
            // Messages the client saw elsewhere that never came here, and an
            // hlc nobody wrote.
            std::vector<Hlc> elsewhere;
            for (const Hlc& gone : w.lost)
                if (!m.named.count(gone) && rng() % 3 == 0) elsewhere.push_back(gone);
            elsewhere.push_back(hlc_at(kStartMs + 999999, 0, 42));
            check(heads, held_heads, true, elsewhere, "heads and hlcs not here");
            if (HasFailure()) return;
        }
    }
    EXPECT_GT(checked, 500u);
    EXPECT_GT(with_held, 20u) << "hardly a view with a held message: a vacuous run";
}

}  // namespace

// A client's cursor: `since`, an hlc below which its region had every
// message (fenced regions' too) when it read (causal.stable_hlc()), and the
// hlcs it showed at or after `since`. catch_up then reads only the tail: the
// rows headed at or after `since`. The tail must give what the whole history
// gives: every message all of whose copies are at or after the cursor, that
// the client did not see and that is not in the causal past of what it saw.
TEST(MergeCatchUp, FromACursorTheTailGivesWhatTheWholeHistoryGives) {
    size_t checked = 0, missed_total = 0, tail_smaller = 0;
    for (uint64_t seed : kSeeds) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed);
        const World w = make_world(seed);
        const Model m(w.copies, w.fences);
        const History full = input_of(w.copies)->merge(w.fences, heap());
        const std::vector<size_t> pos = positions(full, m);
        if (HasFailure()) return;
        // The rows a region stores: per msg_id, headed by its smallest copy.
        std::map<MsgId, std::vector<Row>> rows;
        std::map<MsgId, Hlc> head;
        for (const Row& c : w.copies) {
            rows[c.msg_id].push_back(c);
            auto [it, fresh] = head.emplace(c.msg_id, c.hlc);
            if (!fresh && c.hlc < it->second) it->second = c.hlc;
        }
        std::vector<Hlc> all_hlcs;
        for (const Row& c : w.copies) all_hlcs.push_back(c.hlc);
        std::sort(all_hlcs.begin(), all_hlcs.end());
        std::mt19937_64 rng(seed * 7 + 3);
        for (int trial = 0; trial < 20; ++trial) {
            SCOPED_TRACE(::testing::Message() << "trial " << trial);
            const Hlc since = all_hlcs[all_hlcs.size() / 5 + rng() % (all_hlcs.size() * 7 / 10)];
            std::vector<Row> tail;
            for (const auto& [id, list] : rows)
                if (!(head.at(id) < since)) tail.insert(tail.end(), list.begin(), list.end());
            tail_smaller += tail.size() < w.copies.size();
            const History h = input_of(tail)->merge(w.fences, heap(), since);

            // What the client saw: every message with a copy below the cursor
            // (its region had them all), and a few later ones, each with its
            // causal past.
            std::vector<bool> saw(m.size(), false);
            for (const auto& [id, first] : head)
                if (first < since) saw[m.index.at(id)] = true;
            for (size_t k = rng() % 5; k > 0; --k) saw[rng() % m.size()] = true;
            for (size_t x = 0; x < m.size(); ++x)
                if (saw[x])
                    for (size_t y = 0; y < m.size(); ++y) saw[y] = saw[y] || m.past[x][y];
            // What it keeps: the hlcs it showed at or after the cursor (it
            // may keep more: those below are covered by the cursor).
            std::vector<Hlc> seen;
            for (size_t x = 0; x < m.size(); ++x) {
                const Message& line = full.messages()[pos[x]];
                if (saw[x] && (!(line.hlc < since) || rng() % 4 == 0)) seen.push_back(line.hlc);
            }
            std::shuffle(seen.begin(), seen.end(), rng);

            std::set<MsgId> expected;
            for (const auto& [id, first] : head)
                if (!(first < since) && !saw[m.index.at(id)]) expected.insert(id);
            CatchUp c = h.catch_up(seen.data(), seen.size(), heap(), since);
            // A seen hlc not in the tail may name a later copy of a message
            // headed below the cursor (presented by a copy an active region
            // wrote after a fenced one): catch_up reads those rows too, and
            // merges again, so that their past in the tail counts as seen.
            std::set<MsgId> more;
            for (const Hlc& name : c.not_here)
                if (auto it = m.named.find(name); it != m.named.end()) more.insert(m.winner[it->second].msg_id);
            History again(heap());
            if (!more.empty()) {
                for (const MsgId& id : more) tail.insert(tail.end(), rows.at(id).begin(), rows.at(id).end());
                again = input_of(tail)->merge(w.fences, heap(), since);
                c = again.catch_up(seen.data(), seen.size(), heap(), since);
            }
            const History& h_used = more.empty() ? h : again;
            std::set<MsgId> got;
            for (uint32_t i : c.missed) got.insert(h_used.messages()[i].msg_id);
            for (const MsgId& id : expected)
                if (!got.count(id))
                    ADD_FAILURE() << "since " << str(since) << ": not given " << describe(full.messages()[pos[m.index.at(id)]]);
            for (const MsgId& id : got)
                if (!expected.count(id))
                    ADD_FAILURE() << "since " << str(since) << ": given, though seen, "
                                  << describe(full.messages()[pos[m.index.at(id)]]);
            EXPECT_TRUE(c.not_here.empty()) << str(c.not_here.front());
            // In causal order: what they depend on comes first. (Not always
            // the whole history's order: an orphan below the cursor, which
            // the tail does not read, can move a reply to it later there.)
            std::map<MsgId, size_t> at;
            for (size_t k = 0; k < c.missed.size(); ++k) at[h_used.messages()[c.missed[k]].msg_id] = k;
            for (const auto& [id, k] : at) {
                const size_t x = m.index.at(id);
                for (size_t y : m.deps[x]) {
                    auto dep = at.find(m.winner[y].msg_id);
                    if (dep != at.end()) EXPECT_LT(dep->second, k) << "a dep after its reply";
                }
            }
            missed_total += expected.size();
            ++checked;
            if (HasFailure()) return;
        }
    }
    EXPECT_GT(missed_total, 100u);
    EXPECT_GT(tail_smaller, checked / 2) << "the tail was the whole history: a vacuous run";
}

// ---------------------------------------------------------------------------
// Reading a conversation in index order (InOrder)

namespace {

// The table's view of a world: one row per msg_id, headed by its smallest
// copy, ascending by hlc as the (conversation, hlc) index returns them;
// `other_copies` when the msg_id had more than one hlc.
struct TableRow {
    Row row;
    bool other_copies = false;
};

std::vector<TableRow> table_of(const std::vector<Row>& copies) {
    std::map<MsgId, TableRow> by_id;
    for (const Row& c : copies) {
        auto [it, fresh] = by_id.try_emplace(c.msg_id, TableRow{c, false});
        if (fresh) continue;
        if (it->second.row.hlc != c.hlc) it->second.other_copies = true;
        if (c.hlc < it->second.row.hlc) it->second.row = c;
    }
    std::vector<TableRow> rows;
    for (auto& [id, r] : by_id) rows.push_back(r);
    std::sort(rows.begin(), rows.end(), [](const TableRow& a, const TableRow& b) { return a.row.hlc < b.row.hlc; });
    return rows;
}

bool fenced(const Row& row, const std::vector<Fence>& fences) {
    return row.region && row.epoch &&
           std::any_of(fences.begin(), fences.end(), [&](const Fence& f) {
               return causal::merge::fenced_write(f, *row.region, *row.epoch, row.hlc);
           });
}

// How many rows, from the first, InOrder takes as plain.
size_t plain_prefix(const std::vector<TableRow>& rows, const std::vector<Fence>& fences) {
    causal::merge::InOrder in_order(heap());
    size_t n = 0;
    while (n < rows.size() && in_order.add(rows[n].row.hlc, rows[n].row.deps.data(), rows[n].row.deps.size(),
                                           rows[n].other_copies, fenced(rows[n].row, fences)))
        ++n;
    return n;
}

// The merge of rows[0, n): must be those rows in that order, all delivered
// and none an orphan, for InOrder to be right to present them as read.
void expect_merge_keeps_order(const std::vector<TableRow>& rows, size_t n, const std::vector<Fence>& fences,
                              const std::string& what) {
    std::vector<Row> prefix;
    for (size_t i = 0; i < n; ++i) prefix.push_back(rows[i].row);
    const History history = input_of(prefix)->merge(fences, heap());
    ASSERT_EQ(history.messages().size(), n) << what;
    for (size_t i = 0; i < n; ++i) {
        const Message& m = history.messages()[i];
        EXPECT_EQ(str(m.hlc), str(rows[i].row.hlc)) << what << ": position " << i + 1;
        EXPECT_TRUE(m.delivered && !m.orphan) << what << ": position " << i + 1;
    }
}

// A deletion is a fenced region's when its writer stamped it inside one
// of that region's fenced intervals: the orphan rule for an insert in the
// fenced epoch, bounded by the lift, after which the region writes in a new
// epoch with its clock above lifted_at.
TEST(Merge, AFencedDeletionIsOneStampedInsideAFenceOfItsWriter) {
    std::mt19937_64 random(41);
    for (int trial = 0; trial < 20000; ++trial) {
        const auto fenced_at = Hlc::from_parts(100 + static_cast<int64_t>(random() % 50), 0, 1);
        std::optional<Hlc> lifted_at;
        if (random() % 2) lifted_at = Hlc::from_parts(fenced_at.physical_ms() + 1 + static_cast<int64_t>(random() % 50), 0, 2);
        const causal::merge::Fence fence{"ap", 3, fenced_at, lifted_at};
        const auto deleted_at = Hlc::from_parts(80 + static_cast<int64_t>(random() % 150), static_cast<uint16_t>(random() % 2),
                                                static_cast<uint16_t>(random() % 3));
        const bool inside = deleted_at > fenced_at && (!lifted_at || deleted_at < *lifted_at);
        EXPECT_EQ(causal::merge::fenced_deletion(fence, "ap", deleted_at), inside);
        EXPECT_FALSE(causal::merge::fenced_deletion(fence, "eu", deleted_at)) << "another region's deletion";
        // While the fence stands, the same as an insert of that epoch.
        if (!lifted_at)
            EXPECT_EQ(causal::merge::fenced_deletion(fence, "ap", deleted_at),
                      causal::merge::fenced_write(fence, "ap", 3, deleted_at));
    }
}

}  // namespace

TEST(MergeInOrder, WhatItTakesAsPlainTheMergeShowsInIndexOrderAllDelivered) {
    size_t longest = 0;
    for (uint64_t seed : kSeeds) {
        for (size_t sends : {20, 160}) {
            const World w = make_world(seed, sends);
            const std::vector<TableRow> rows = table_of(w.copies);
            const size_t n = plain_prefix(rows, w.fences);
            longest = std::max(longest, n);
            expect_merge_keeps_order(rows, n, w.fences, "seed " + std::to_string(seed));
            // Without fences, a world's prefix is plain for longer.
            const size_t unfenced = plain_prefix(rows, {});
            EXPECT_GE(unfenced, n);
            expect_merge_keeps_order(rows, unfenced, {}, "seed " + std::to_string(seed) + ", no fences");
        }
    }
    EXPECT_GT(longest, size_t{5}) << "the worlds never gave InOrder a run of plain rows to check";
}

TEST(MergeInOrder, AConversationOfRepliesIsPlainToTheEndAndMergesToItsIndexOrder) {
    for (uint64_t seed : kSeeds) {
        std::mt19937_64 rng(seed);
        std::vector<TableRow> rows;
        for (uint32_t i = 0; i < 300; ++i) {
            TableRow r;
            r.row.msg_id = id_of(static_cast<uint8_t>(i));
            r.row.msg_id[1] = static_cast<uint8_t>(i >> 8);
            r.row.hlc = hlc_at(kStartMs + i / 3, i % 3, static_cast<uint16_t>(1 + rng() % 3));
            for (size_t d = rng() % 3; d > 0 && i > 0; --d) r.row.deps.push_back(rows[rng() % i].row.hlc);
            r.row.region = kRegions[rng() % 4];
            r.row.epoch = 0;
            rows.push_back(r);
        }
        ASSERT_EQ(plain_prefix(rows, {}), rows.size());
        expect_merge_keeps_order(rows, rows.size(), {}, "seed " + std::to_string(seed));
    }
}

TEST(MergeInOrder, EachThingTheMergeDecidesEndsTheRun) {
    auto conversation = [] {
        std::vector<TableRow> rows;
        for (uint8_t i = 0; i < 4; ++i) {
            TableRow r;
            r.row.msg_id = id_of(i);
            r.row.hlc = hlc_at(kStartMs + i, 0, 1);
            if (i > 0) r.row.deps = {rows[i - 1].row.hlc};
            r.row.region = "eu-west";
            r.row.epoch = 1;
            rows.push_back(r);
        }
        return rows;
    };
    EXPECT_EQ(plain_prefix(conversation(), {}), 4u);
    auto rows = conversation();
    rows[2].other_copies = true;
    EXPECT_EQ(plain_prefix(rows, {}), 2u) << "a message with another copy";
    rows = conversation();
    EXPECT_EQ(plain_prefix(rows, {Fence{"eu-west", 1, hlc_at(kStartMs + 1, 5, 999), std::nullopt}}), 2u)
        << "a fenced write";
    rows = conversation();
    rows[3].row.deps = {hlc_at(kStartMs - 10, 0, 7)};
    EXPECT_EQ(plain_prefix(rows, {}), 3u) << "a dep that is not here";
    rows = conversation();
    rows[1].row.deps = {rows[1].row.hlc};
    EXPECT_EQ(plain_prefix(rows, {}), 1u) << "a dep on itself";
    rows = conversation();
    rows[2].row.hlc = rows[1].row.hlc;
    rows[2].row.deps = {rows[0].row.hlc};
    rows[3].row.deps = {rows[0].row.hlc};
    EXPECT_EQ(plain_prefix(rows, {}), 2u) << "two messages with one hlc";
}
