// causal.guard_ddl(): the event triggers that keep each causal message
// table within its shape (table_shape.hpp).
//
// A table owner may change its table as it likes within the shape, and in
// no other way: at the end of every command of a role that is not a
// superuser, each message table the command touched must still be well
// formed (causal.message_table_problem), or the command is refused. Only
// the tables the command touched are judged, so a table a superuser left
// outside the shape holds up its own owner's changes to it, and nobody
// else's. Touched: the table an ALTER TABLE, CREATE INDEX, CREATE TRIGGER
// or CREATE RULE names; the parents of a table created or altered (an
// inheritance child); the tables, schemas and sequences a GRANT or REVOKE
// names (the replication role's rights); the table of a trigger, index or
// rule a DROP removes, found before it goes. Two changes are judged by what
// the command does, not by what it leaves: one of pg_causal's columns (or
// the conversation) dropped, even to be added again in the same command
// (every message would be restamped), and ALTER COLUMN ... TYPE ... USING
// on one (every value rewritten, no trigger fired).
//
// Superusers are trusted (and pg_restore recreates triggers one at a
// time). The event triggers are ENABLE ALWAYS: the owner's code also runs
// with session_replication_role = replica, where pg_causal stores rows as
// the owner.
//
// The same function guards DROP EXTENSION pg_causal CASCADE, which would
// drop every message table's hlc, deps and deleted_at columns.

#include "infra/postgres.hpp"
#include "infra/settings.hpp"
#include "infra/spi.hpp"
#include "table/table_shape.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type_d.h"
#include "commands/event_trigger.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
#include "tcop/deparse_utility.h"
#include "utils/acl.h"
#include "utils/aclchk_internal.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include <cstring>

namespace causal::pg {

namespace {

// The tables the DROP of the current command removes objects of, found at
// its start (the objects, and so their tables, are gone at its end).
constexpr int kMaxDropped = 64;
Oid dropped_from[kMaxDropped];
int dropped_count = 0;
bool dropped_overflow = false;

bool drops_pg_causal(Node* parsetree) {
    if (parsetree == nullptr || !IsA(parsetree, DropStmt)) return false;
    const auto* stmt = reinterpret_cast<DropStmt*>(parsetree);
    if (stmt->removeType != OBJECT_EXTENSION) return false;
    ListCell* cell;
    foreach (cell, stmt->objects)
        if (std::strcmp(strVal(lfirst(cell)), "pg_causal") == 0) return stmt->behavior == DROP_CASCADE;
    return false;
}

void guard_drop_extension(Node* parsetree) {
    if (!drops_pg_causal(parsetree) || allow_drop_extension) return;
    SPI_connect();
    spi_run("SELECT pg_catalog.count(*), pg_catalog.string_agg(m.relid::pg_catalog.text, ', ')"
            "  FROM causal.message_tables() m",
            SPI_OK_SELECT);
    bool isnull = false;
    const int64 tables = DatumGetInt64(spi_value(1, &isnull));
    const char* names = tables > 0 ? pstrdup(spi_text(0, 2)) : "";
    SPI_finish();
    if (tables == 0) return;
    ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                    errmsg("cannot drop extension pg_causal while causal message tables exist"),
                    errdetail("DROP EXTENSION ... CASCADE would drop the columns hlc, deps, deleted_at and copies of %s: "
                              "every message's place in its conversation and what it replies to, in this region.",
                              names),
                    errhint("Keep what you need of those columns elsewhere (hlc::text), then SET "
                            "causal.allow_drop_extension = on and drop it again.")));
}

// At the start of a DROP of triggers, rules or indexes: the tables they are
// on, by PostgreSQL's own lookup of the objects the statement names.
void note_dropped_from(Node* parsetree) {
    dropped_count = 0;
    dropped_overflow = false;
    if (parsetree == nullptr || !IsA(parsetree, DropStmt)) return;
    const auto* stmt = reinterpret_cast<DropStmt*>(parsetree);
    if (stmt->removeType != OBJECT_TRIGGER && stmt->removeType != OBJECT_RULE && stmt->removeType != OBJECT_INDEX)
        return;
    ListCell* cell;
    foreach (cell, stmt->objects) {
        Relation relation = nullptr;
        const ObjectAddress address =
            get_object_address(stmt->removeType, static_cast<Node*>(lfirst(cell)), &relation, AccessShareLock, true);
        Oid table = InvalidOid;
        if (relation != nullptr) {
            table = RelationGetRelid(relation);
            relation_close(relation, AccessShareLock);
        }
        if (stmt->removeType == OBJECT_INDEX && OidIsValid(address.objectId))
            table = IndexGetRelation(address.objectId, true);
        if (!OidIsValid(table)) continue;
        if (dropped_count == kMaxDropped)
            dropped_overflow = true;
        else
            dropped_from[dropped_count++] = table;
    }
}

// The table an object of the catalogs belongs to, or InvalidOid.
Oid table_of(Oid classid, Oid objid) {
    if (classid == RelationRelationId) {
        switch (get_rel_relkind(objid)) {
            case RELKIND_RELATION:
            case RELKIND_PARTITIONED_TABLE:
                return objid;
            case RELKIND_INDEX:
            case RELKIND_PARTITIONED_INDEX:
                return IndexGetRelation(objid, true);
            case RELKIND_SEQUENCE: {
                Oid table = InvalidOid;
                int32 column = 0;
                return sequenceIsOwned(objid, DEPENDENCY_AUTO, &table, &column) ? table : InvalidOid;
            }
            default:
                return InvalidOid;
        }
    }
    HeapTuple tuple = nullptr;
    Oid table = InvalidOid;
    if (classid == TriggerRelationId) {
        Relation catalog = table_open(TriggerRelationId, AccessShareLock);
        tuple = get_catalog_object_by_oid(catalog, Anum_pg_trigger_oid, objid);
        if (tuple != nullptr) table = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple))->tgrelid;
        table_close(catalog, AccessShareLock);
    } else if (classid == RewriteRelationId) {
        Relation catalog = table_open(RewriteRelationId, AccessShareLock);
        tuple = get_catalog_object_by_oid(catalog, Anum_pg_rewrite_oid, objid);
        if (tuple != nullptr) table = reinterpret_cast<Form_pg_rewrite>(GETSTRUCT(tuple))->ev_class;
        table_close(catalog, AccessShareLock);
    } else if (classid == ConstraintRelationId) {
        tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(objid));
        if (HeapTupleIsValid(tuple)) {
            table = reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tuple))->conrelid;
            ReleaseSysCache(tuple);
        }
    }
    return table;
}

void add_table(List** tables, Oid table) {
    if (!OidIsValid(table) || list_member_oid(*tables, table)) return;
    *tables = lappend_oid(*tables, table);
}

// What a GRANT or REVOKE names: tables, sequences (their tables), schemas
// (the message tables in them).
void add_granted(List** tables, const InternalGrant* grant) {
    ListCell* cell;
    if (grant->objtype == OBJECT_TABLE || grant->objtype == OBJECT_SEQUENCE) {
        foreach (cell, grant->objects) add_table(tables, table_of(RelationRelationId, lfirst_oid(cell)));
        return;
    }
    if (grant->objtype != OBJECT_SCHEMA) return;
    spi_run("SELECT m.relid::pg_catalog.oid, c.relnamespace FROM causal.message_tables() m"
            "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.relid",
            SPI_OK_SELECT);
    for (uint64 row = 0; row < SPI_processed; ++row)
        if (list_member_oid(grant->objects, spi_oid(row, 2))) add_table(tables, spi_oid(row, 1));
}

// Every table this command touched, and their inheritance parents (a child
// made or attached is a problem of its parent's).
List* touched_tables() {
    List* tables = NIL;
    spi_run("SELECT c.classid, c.objid, c.command FROM pg_catalog.pg_event_trigger_ddl_commands() c", SPI_OK_SELECT);
    const uint64 commands = SPI_processed;
    SPITupleTable* result = SPI_tuptable;
    for (uint64 row = 0; row < commands; ++row) {
        bool classid_null = false, objid_null = false, command_null = false;
        const Datum classid = SPI_getbinval(result->vals[row], result->tupdesc, 1, &classid_null);
        const Datum objid = SPI_getbinval(result->vals[row], result->tupdesc, 2, &objid_null);
        const Datum command = SPI_getbinval(result->vals[row], result->tupdesc, 3, &command_null);
        if (!classid_null && !objid_null) add_table(&tables, table_of(DatumGetObjectId(classid), DatumGetObjectId(objid)));
        const auto* collected = command_null ? nullptr : reinterpret_cast<const CollectedCommand*>(DatumGetPointer(command));
        if (collected != nullptr && collected->type == SCT_Grant) add_granted(&tables, collected->d.grant.istmt);
    }
    for (int i = 0; i < dropped_count; ++i) add_table(&tables, dropped_from[i]);
    dropped_count = 0;
    List* parents = NIL;
    ListCell* cell;
    foreach (cell, tables) {
        // Inheritance parents and partitioned tables alike.
        Relation inherits = table_open(InheritsRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(lfirst_oid(cell)));
        SysScanDesc scan = systable_beginscan(inherits, InheritsRelidSeqnoIndexId, true, nullptr, 1, &key);
        HeapTuple tuple;
        while (HeapTupleIsValid(tuple = systable_getnext(scan)))
            add_table(&parents, reinterpret_cast<Form_pg_inherits>(GETSTRUCT(tuple))->inhparent);
        systable_endscan(scan);
        table_close(inherits, AccessShareLock);
    }
    foreach (cell, parents) add_table(&tables, lfirst_oid(cell));
    // And everything below them: a command on a partitioned table or an
    // inheritance parent recurses into its children (ATTACH PARTITION names
    // the parent, and makes the table it attaches one of them).
    List* below = NIL;
    foreach (cell, tables) {
        ListCell* child;
        foreach (child, find_all_inheritors(lfirst_oid(cell), NoLock, nullptr)) add_table(&below, lfirst_oid(child));
    }
    foreach (cell, below) add_table(&tables, lfirst_oid(cell));
    return tables;
}

const char* table_name(Oid relid);

// One of pg_causal's columns, or the conversation.
bool stamp_column(const char* column, const char* conversation) {
    return is_message_column(column) || (conversation != nullptr && std::strcmp(column, conversation) == 0);
}

// ALTER COLUMN ... TYPE rewrites every value of the column, through an
// expression of the caller's choice, and fires no trigger: on pg_causal's
// columns (and the conversation's) it would restamp messages unchecked.
void guard_rewrites(Node* parsetree) {
    if (parsetree == nullptr || !IsA(parsetree, AlterTableStmt)) return;
    const auto* stmt = reinterpret_cast<AlterTableStmt*>(parsetree);
    const Oid named = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(named)) return;
    // The table named, and those the command recurses into.
    List* tables = stmt->relation->inh ? find_all_inheritors(named, NoLock, nullptr) : list_make1_oid(named);
    ListCell* table;
    foreach (table, tables) {
        const Oid relid = lfirst_oid(table);
        char* conversation = nullptr;
        if (!is_message_table(relid, &conversation)) continue;
        ListCell* cell;
        foreach (cell, stmt->cmds) {
            const auto* cmd = reinterpret_cast<AlterTableCmd*>(lfirst(cell));
            if (cmd->subtype != AT_AlterColumnType || cmd->name == nullptr) continue;
            if (stamp_column(cmd->name, conversation))
                ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                                errmsg("cannot change the type of column \"%s\" of causal message table %s", cmd->name,
                                       table_name(relid)),
                                errdetail("It would rewrite every message's %s unchecked.", cmd->name),
                                errhint("Only a superuser can.")));
        }
    }
}

const char* table_name(Oid relid) {
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

void refuse(Oid relid, const ShapeProblem& p) {
    ereport(ERROR, (errcode(p.sqlstate), errmsg("causal message table %s: %s", table_name(relid), p.problem),
                    errdetail("pg_causal stamps and checks every row of a message table; after this change it "
                              "could not."),
                    p.hint ? errhint("%s", p.hint) : 0));
}

void grant_sequences(List* tables) {
    const Oid role = replication_role();
    if (!OidIsValid(role)) return;
    ListCell* cell;
    foreach (cell, tables) {
        char* conversation = nullptr;
        if (!is_message_table(lfirst_oid(cell), &conversation)) continue;
        StringInfoData grant;
        initStringInfo(&grant);
        Relation depend = table_open(DependRelationId, AccessShareLock);
        ScanKeyData keys[2];
        ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                    ObjectIdGetDatum(RelationRelationId));
        ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(lfirst_oid(cell)));
        SysScanDesc scan = systable_beginscan(depend, DependReferenceIndexId, true, nullptr, 2, keys);
        HeapTuple tuple;
        while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
            const auto* d = reinterpret_cast<Form_pg_depend>(GETSTRUCT(tuple));
            if (d->classid != RelationRelationId || d->deptype != DEPENDENCY_AUTO ||
                get_rel_relkind(d->objid) != RELKIND_SEQUENCE ||
                pg_class_aclcheck(d->objid, role, ACL_USAGE) == ACLCHECK_OK)
                continue;
            appendStringInfo(&grant, "%s%s", grant.len ? ", " : "GRANT USAGE ON SEQUENCE ", table_name(d->objid));
        }
        systable_endscan(scan);
        table_close(depend, AccessShareLock);
        // One statement: the guard judges the table at its end.
        if (grant.len > 0) spi_run(psprintf("%s TO causal_replicator", grant.data), SPI_OK_UTILITY);
    }
}

void guard_message_tables(Node* parsetree) {
    if (superuser()) return;
    guard_rewrites(parsetree);
    SPI_connect();
    List* tables = touched_tables();
    const bool overflow = dropped_overflow;
    dropped_overflow = false;
    if (overflow) {
        // A DROP of more objects than noted: every message table of this role.
        spi_run("SELECT m.relid::pg_catalog.oid FROM causal.message_tables() m"
                "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.relid"
                " WHERE pg_catalog.pg_has_role(c.relowner, 'MEMBER')",
                SPI_OK_SELECT);
        for (uint64 row = 0; row < SPI_processed; ++row) add_table(&tables, spi_oid(row, 1));
    }
    // A column with a serial default, added by this command: the replication
    // role draws from its sequence for a row whose sender lacks the column,
    // as enable() lets it for the columns there before. A REVOKE is judged
    // as it is.
    if (parsetree != nullptr && !IsA(parsetree, GrantStmt)) grant_sequences(tables);
    SPI_finish();
    ListCell* cell;
    foreach (cell, tables) {
        char* conversation = nullptr;
        const Oid relid = lfirst_oid(cell);
        if (!is_message_table(relid, &conversation)) continue;
        if (ShapeProblem p = message_table_problem(relid, conversation)) refuse(relid, p);
    }
}

// sql_drop: a column of pg_causal's, or the conversation, dropped from a
// message table. Also when the same command adds it again: each message's
// stamp would be the new column's default or generation expression.
void guard_dropped_columns() {
    if (superuser()) return;
    SPI_connect();
    spi_run("SELECT d.objid, d.address_names[pg_catalog.array_upper(d.address_names, 1)]"
            "  FROM pg_catalog.pg_event_trigger_dropped_objects() d"
            " WHERE d.object_type OPERATOR(pg_catalog.=) 'table column'",
            SPI_OK_SELECT);
    for (uint64 row = 0; row < SPI_processed; ++row) {
        const Oid relid = spi_oid(row, 1);
        const char* column = spi_text(row, 2);
        char* conversation = nullptr;
        if (column == nullptr || !is_message_table(relid, &conversation)) continue;
        if (!stamp_column(column, conversation)) continue;
        ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                        errmsg("cannot drop column \"%s\" of causal message table %s", column, table_name(relid)),
                        errdetail("pg_causal's columns, and the conversation column, stay as causal.enable() made "
                                  "them: one dropped, even to be added again, would restamp every message."),
                        errhint("causal.disable() (for causal_admin) turns a message table back into an ordinary "
                                "table.")));
    }
    SPI_finish();
}

}  // namespace
}  // namespace causal::pg

CAUSAL_FUNCTION(guard_ddl) {
    using namespace causal::pg;
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("causal.guard_ddl() must be called as an event trigger")));
    const auto* data = reinterpret_cast<EventTriggerData*>(fcinfo->context);
    if (std::strcmp(data->event, "ddl_command_start") == 0) {
        guard_drop_extension(data->parsetree);
        note_dropped_from(data->parsetree);
    } else if (std::strcmp(data->event, "sql_drop") == 0) {
        guard_dropped_columns();
    } else {
        guard_message_tables(data->parsetree);
    }
    PG_RETURN_VOID();
}
