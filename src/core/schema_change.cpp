#include "schema_change.hpp"

#include <algorithm>

namespace causal::schema {

namespace {

const char* const kOrder =
    " Stop writing it, wait until causalctl status shows no lag, then run the statement in every region "
    "(docs/operations.md, Schema changes).";

const std::string kOldColumn =
    std::string("a dropped or renamed column cannot be ordered across regions (rows written before the change still "
                "carry the old column, and would stop the link of every region that changed first).") +
    kOrder;

const std::string kOldTable =
    std::string("a dropped, renamed or moved table cannot be ordered across regions (rows written before the change "
                "still name the table as it was, and would stop the link of every region that changed first).") +
    kOrder;

const std::string kPgCausals =
    "pg_causal reads and writes its columns and the conversation column by name and type in every region, "
    "as causal.enable() made them; a message table keeps them (causal.disable() turns it back into an ordinary "
    "table).";

std::string describe(const Table& table) {
    return (table.message ? "message table " : "replicated table ") + table.name;
}

const Table* find(const std::vector<Table>& tables, unsigned oid) {
    auto it = std::find_if(tables.begin(), tables.end(), [&](const Table& t) { return t.oid == oid; });
    return it == tables.end() ? nullptr : &*it;
}

const Column* find(const std::vector<Column>& columns, int number) {
    auto it = std::find_if(columns.begin(), columns.end(), [&](const Column& c) { return c.number == number; });
    return it == columns.end() ? nullptr : &*it;
}

// Whether every value of `before`'s type is one `after`'s takes, by what
// the catalog says: an implicit cast, or the same type that PostgreSQL did
// not rewrite the table for (or that lost its modifier).
bool widens(const Column& before, const Column& after, bool rewritten, const Rules& rules) {
    if (before.type == after.type) return after.modifier == -1 || !rewritten;
    return rules.implicit_casts.count({before.type, after.type}) > 0;
}

}  // namespace

std::vector<Refusal> refused_changes(const std::vector<Table>& before, const std::vector<Table>& after,
                                     const Rules& rules) {
    std::vector<Refusal> refused;
    for (const Table& was : before) {
        if (!was.exists) continue;
        const Table* now = find(after, was.oid);
        if (now == nullptr || !now->exists) {
            refused.push_back({"drops " + describe(was), kOldTable});
            continue;
        }
        if (now->name != was.name) {
            refused.push_back({"renames " + describe(was) + " to " + now->name, kOldTable});
            continue;
        }
        const bool rewritten = now->storage != was.storage;
        for (const Column& column : was.columns) {
            if (column.dropped) continue;
            const bool ours = was.message && rules.pg_causal_columns.count(column.name) > 0;
            const bool conversation = was.message && column.name == was.conversation;
            const std::string what = (ours ? "pg_causal's column " : conversation ? "the conversation column " : "column ") +
                                     column.name + " of " + describe(was);
            const Column* then = find(now->columns, column.number);
            if (then == nullptr || then->dropped) {
                refused.push_back({"drops " + what, ours || conversation ? kPgCausals : kOldColumn});
                continue;
            }
            if (then->name != column.name) {
                refused.push_back({"renames " + what + " to " + then->name, ours || conversation ? kPgCausals : kOldColumn});
                continue;
            }
            if (then->type == column.type && then->modifier == column.modifier) continue;
            const std::string change = "changes the type of " + what + " from " + column.type_name + " to " + then->type_name;
            if (ours || conversation)
                refused.push_back({change, kPgCausals});
            else if (!widens(column, *then, rewritten, rules))
                refused.push_back({change, "rows written before the change carry values of " + column.type_name +
                                               ", which " + then->type_name +
                                               " may refuse, and one would stop the link of every region that "
                                               "changed first (a type the old one casts to implicitly takes them all)." +
                                               kOrder});
        }
        if (was.message && !now->message) {
            refused.push_back({"makes " + describe(was) + " an ordinary table",
                               "its messages still on their way would arrive at a table without pg_causal's "
                               "triggers." + std::string(kOrder)});
        } else if (was.message && !was.problem && now->problem) {
            refused.push_back({"takes " + describe(was) + " out of the shape of a message table: " + *now->problem,
                               "a message table stays within it (causal.message_table_problem()): outside, its rows "
                               "are stored as its owner and its owner's changes refused."});
        }
    }
    return refused;
}

}  // namespace causal::schema
