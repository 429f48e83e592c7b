// Which schema changes a mesh can take while it replicates, judged by what
// a statement did to the catalog, not by its text. PostgreSQL-free:
// causalctl ddl reads the catalog of every region inside the statement's
// open transaction, before and after it, and refuses (every region rolls
// back) what this finds.
//
// Logical replication carries rows, not DDL, and matches tables by name and
// columns by name. causalctl ddl commits a change region after region,
// each holding the table's lock until then, so a row written after the
// change reaches no region before the change does. But rows written before
// it are still on their way when it lands, and they carry the table as it
// was. So the mesh can take a change that the old rows still fit (a column
// added, a type widened, a constraint the region checked its rows against),
// and not one they no longer fit:
//   * a replicated table dropped, renamed or moved to another schema;
//   * a column of one dropped or renamed;
//   * a column's type changed to one that may refuse the old values: the
//     rows carry each value as text, which the new type's input must take.
//     Taken: a type the old one casts to implicitly (int to bigint, varchar
//     to text), or the same type where PostgreSQL did not have to rewrite
//     the table (it proved every old value still fits: varchar(10) to
//     varchar(20)) or that lost its modifier;
// and a message table must stay one:
//   * pg_causal's columns and the conversation column keep their type (the
//     merge, the triggers and every reader read them), like their names;
//   * a message table stays within the shape of a message table
//     (causal.message_table_problem(), the one definition) and stays a
//     message table.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace causal::schema {

struct Column {
    int number = 0;         // attnum: the same column before and after
    std::string name;
    unsigned type = 0;      // the type's oid
    int modifier = -1;      // atttypmod
    std::string type_name;  // format_type(type, modifier), for messages
    bool dropped = false;   // attisdropped
};

// A table the mesh replicates (a message table, or one of the mesh's
// publications), as one region's catalog shows it.
struct Table {
    unsigned oid = 0;
    bool exists = true;                  // false: gone (after a DROP)
    std::string name;                    // schema-qualified, quoted
    bool message = false;                // a message table (causal.message_tables())
    std::string conversation;            // its conversation column, when it is one
    std::optional<std::string> problem;  // why it is outside the shape, when it is
    std::string storage;                 // relfilenode: another one after a rewrite
    std::vector<Column> columns;
};

// What the mesh cannot take: what changed, and why, with what to do instead.
struct Refusal {
    std::string change;  // "drops column mood of message table chat.messages"
    std::string why;
};

// pg_causal's columns of a message table (causal.message_columns()) and
// the type pairs PostgreSQL casts implicitly (pg_cast, castcontext 'i'):
// the facts the judgement needs from the catalog beside the tables.
struct Rules {
    std::set<std::string> pg_causal_columns;
    std::set<std::pair<unsigned, unsigned>> implicit_casts;
};

// Every change from `before` to `after` (the same region, inside the
// statement's transaction) that the mesh cannot take. Tables only in
// `after` are new: nothing replicates them yet.
std::vector<Refusal> refused_changes(const std::vector<Table>& before, const std::vector<Table>& after,
                                     const Rules& rules);

}  // namespace causal::schema
