// The shape of a causal message table: the one statement of what a table
// must be to be one, and of what its owner may attach to it.
//
// The owner of a message table is not trusted, and PostgreSQL has more ways
// to attach code to a table than any list of them: triggers, rules,
// policies, defaults, generated columns, constraints, index expressions and
// predicates, column types with their input, output and cast functions.
// Several of those run in processes that are not the owner's: PostgreSQL's
// apply and table sync workers (which fill in defaults and evaluate
// constraints and index expressions as the subscription's owner on
// PostgreSQL 15), pg_causal's relay, causal.enable(). So this is an
// allow-list: what is not known to run only the owner's or a superuser's
// code in every process that touches the table is refused.
//
//  * the table: a permanent heap table, no inheritance, no typed table (OF
//    type: ALTER TYPE would change it outside the DDL guard), no rules;
//  * triggers: only pg_causal's fire in the replication workers (ALWAYS or
//    REPLICA); the owner's fire on its own local writes, as PostgreSQL runs
//    them, as the writing session;
//  * column types, and every type an expression yields: owned by a
//    superuser, as is everything they are made of (elements, base types,
//    range subtypes, attributes); only a type's owner may give it casts;
//  * expressions (CHECK constraints, index expressions and predicates,
//    generated columns): the rule PostgreSQL 15 itself applies to
//    publication row filters, which run in every walsender: immutable
//    functions of pg_catalog that initdb made (or pg_causal's own), a
//    fixed set of expression kinds; no subquery, no column of the system;
//  * defaults: the same, and now(), statement_timestamp(),
//    clock_timestamp(), transaction_timestamp(), gen_random_uuid(),
//    causal.new_msg_id(), CURRENT_TIMESTAMP and the like, and nextval() of a
//    sequence the table owns;
//  * no foreign key from the table (the apply worker stores rows in replica
//    mode, which skips the check: it could hold in one region and not in
//    another), no exclusion constraint and no unique index without msg_id
//    (rows written in different regions would collide on them);
//  * pg_causal's columns exactly as enable() makes them (type, NOT NULL,
//    default, never generated or an identity), and the conversation column
//    never generated;
//  * for a table that is a message table: pg_causal's three triggers,
//    enabled ALWAYS; the replica identity on msg_id; the replication role
//    may read, insert and update it, use its schema and the sequences its
//    defaults draw from.
// Allowed because they run only as the owner or in the owner's own
// sessions: policies (the replication role bypasses them, and pg_causal
// writes below them), statistics objects (only ANALYZE evaluates them, as
// the owner), identity columns, indexes of any access method, the owner's
// own publications (no subscription of the mesh names them), foreign keys
// from other tables to this one.
#pragma once

#include "table/message_table.hpp"

namespace causal::pg {

// pg_causal's columns of a message table, as causal.enable() adds them.
struct MessageColumn {
    const char* name;
    AttrNumber Columns::*attnum;  // where the triggers keep its position
    const char* type;             // as enable() writes it
    bool not_null;
    const char* default_sql;      // as enable() writes it, or nullptr
};
extern const MessageColumn kMessageColumns[];
extern const int kMessageColumnCount;
// Its type in this database (pg_causal's types are found in its schema).
Oid message_column_type(const MessageColumn& column);

// What keeps a table from being a message table, or nothing (problem ==
// nullptr). palloc'd; sqlstate is one of ERRCODE_*.
struct ShapeProblem {
    int sqlstate = 0;
    const char* problem = nullptr;
    const char* hint = nullptr;
    explicit operator bool() const { return problem != nullptr; }
};

// What of `relid` its owner controls, checked against the allow-list: what
// causal.enable() requires before it changes the table, and what the apply
// path requires before it leaves a row to PostgreSQL's own insert.
ShapeProblem owners_part_problem(Oid relid);

// Everything: the owner's part, pg_causal's columns and triggers (the
// causal_message trigger's conversation column), the replica identity and
// the replication role's rights. The one definition of a well-formed
// message table, for the DDL guard, enable() and causalctl.
ShapeProblem message_table_problem(Oid relid, const char* conversation);

// Whether `relid` is a message table (it carries one of pg_causal's
// trigger functions, as causal.message_tables() lists it), and if so its
// conversation column, the causal_message trigger's argument (nullptr
// without that trigger; palloc'd).
bool is_message_table(Oid relid, char** conversation);

// Where pg_causal's columns and the conversation column are in `desc`,
// each with pg_causal's type: what a trigger or a reader needs of a table
// on every call (message_table_problem() is the whole shape, asked when
// the table changes). written_by may be missing: a table of 0.2.0 that
// ALTER EXTENSION ... UPDATE has not reached yet. 42703 or 42804.
ShapeProblem locate_message_columns(TupleDesc desc, const char* relname, const char* conversation, Columns* where);

// Whether `attname` is one of pg_causal's columns.
bool is_message_column(const char* attname);

// pg_causal's schema, and the role its replication processes run as
// (InvalidOid while it does not exist: a catalog of a version without it).
Oid causal_namespace();
Oid replication_role();
constexpr const char* kReplicationRole = "causal_replicator";

}  // namespace causal::pg
