// causal.guard_ddl(): the event trigger that keeps causal message tables
// what causal.enable() made them.
//
// A table owner may change its table as it likes, but not in ways that let
// rows past pg_causal's trigger or run the owner's code with the apply
// worker's rights: disabling or dropping pg_causal's triggers, triggers
// that fire in the apply worker (ENABLE ALWAYS or REPLICA), inheritance
// children, other types for pg_causal's columns, another replica identity
// (causal.message_tables() lists what is wrong with each table), or
// rewriting the values of pg_causal's columns (ALTER COLUMN ... TYPE ...
// USING, which fires no trigger). At the end of every such command by a role
// that is not a superuser, the message tables that role owns must still be
// well formed, or the command is refused. Superusers are trusted (and
// restore dumps, where triggers come back one at a time). The event
// triggers are ENABLE ALWAYS: the owner's code also runs with
// session_replication_role = replica, where pg_causal stores rows as the
// owner.
//
// The same function guards DROP EXTENSION pg_causal CASCADE, which would
// drop every message table's hlc, deps and deleted_at columns.

#include "postgres.hpp"
#include "settings.hpp"
#include "spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/event_trigger.h"
#include "utils/lsyscache.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
}

#include <cstring>

namespace causal::pg {

namespace {

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

// ALTER COLUMN ... TYPE rewrites every value of the column, through an
// expression of the caller's choice, and fires no trigger: on pg_causal's
// columns (and the conversation's) it would restamp messages unchecked.
void guard_rewrites(Node* parsetree) {
    if (parsetree == nullptr || !IsA(parsetree, AlterTableStmt)) return;
    const auto* stmt = reinterpret_cast<AlterTableStmt*>(parsetree);
    const Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid)) return;
    ListCell* cell;
    foreach (cell, stmt->cmds) {
        const auto* cmd = reinterpret_cast<AlterTableCmd*>(lfirst(cell));
        if (cmd->subtype != AT_AlterColumnType || cmd->name == nullptr) continue;
        const Datum args[] = {ObjectIdGetDatum(relid), CStringGetTextDatum(cmd->name)};
        const Oid types[] = {OIDOID, TEXTOID};
        spi_run("SELECT 1 FROM causal.message_tables() m WHERE m.relid OPERATOR(pg_catalog.=) $1"
                "   AND $2 OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT c.name FROM causal.message_columns() c)"
                "                                     OPERATOR(pg_catalog.||) m.conversation::pg_catalog.text)",
                SPI_OK_SELECT, {2, types, args});
        if (SPI_processed > 0)
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("cannot change the type of column \"%s\" of causal message table %s", cmd->name,
                                   get_rel_name(relid)),
                            errdetail("It would rewrite every message's %s unchecked.", cmd->name),
                            errhint("Only a superuser can.")));
    }
}

void guard_message_tables(Node* parsetree) {
    if (superuser()) return;
    SPI_connect();
    guard_rewrites(parsetree);
    spi_run("SELECT m.relid::pg_catalog.text, m.sqlstate, m.problem, m.hint"
            "  FROM causal.message_tables() m JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.relid"
            " WHERE m.problem IS NOT NULL AND pg_catalog.pg_has_role(c.relowner, 'MEMBER')"
            " ORDER BY 1 LIMIT 1",
            SPI_OK_SELECT);
    if (SPI_processed == 0) {
        SPI_finish();
        return;
    }
    const char* table = pstrdup(spi_text(0, 1));
    const char* state = pstrdup(spi_text(0, 2));
    const char* problem = pstrdup(spi_text(0, 3));
    const char* hint = spi_text(0, 4) ? pstrdup(spi_text(0, 4)) : nullptr;
    SPI_finish();
    ereport(ERROR, (errcode(MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])),
                    errmsg("causal message table %s: %s", table, problem),
                    errdetail("pg_causal stamps and checks every row of a message table; after this change it "
                              "could not."),
                    hint ? errhint("%s", hint) : 0));
}

}  // namespace
}  // namespace causal::pg

CAUSAL_FUNCTION(guard_ddl) {
    using namespace causal::pg;
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("causal.guard_ddl() must be called as an event trigger")));
    const auto* data = reinterpret_cast<EventTriggerData*>(fcinfo->context);
    if (std::strcmp(data->event, "ddl_command_start") == 0)
        guard_drop_extension(data->parsetree);
    else
        guard_message_tables(data->parsetree);
    PG_RETURN_VOID();
}
