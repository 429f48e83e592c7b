#include "table/table_shape.hpp"

#include <cstring>

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "commands/extension.h"
#include "nodes/nodeFuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/catcache.h"
#include "utils/syscache.h"
#include "funcapi.h"
}

namespace causal::pg {

const MessageColumn kMessageColumns[] = {
    {"msg_id", &Columns::msg_id, "uuid", true, "causal.new_msg_id()"},
    {"hlc", &Columns::hlc, "causal.hlc", true, nullptr},
    {"deps", &Columns::deps, "causal.hlc[]", true, "'{}'"},
    {"crdb_region", &Columns::region, "text", true, nullptr},
    {"epoch", &Columns::epoch, "bigint", true, nullptr},
    {"deleted_at", &Columns::deleted_at, "causal.hlc", false, nullptr},
    {"copies", &Columns::copies, "causal.copy[]", true, "'{}'"},
    // the region whose DELETE made a tombstone (whose crdb_region is the
    // message's); NULL on every other row, which its crdb_region's region
    // wrote. A region publishes the rows it wrote, coalesce(written_by,
    // crdb_region) (causal_messages); the apply path keeps it as it comes.
    {"written_by", &Columns::written_by, "text", false, nullptr},
};
const int kMessageColumnCount = sizeof kMessageColumns / sizeof kMessageColumns[0];

bool is_message_column(const char* attname) {
    for (const MessageColumn& c : kMessageColumns)
        if (std::strcmp(c.name, attname) == 0) return true;
    return false;
}

ShapeProblem locate_message_columns(TupleDesc desc, const char* relname, const char* conversation, Columns* where) {
    const int conversation_attnum = SPI_fnumber(desc, conversation);
    if (conversation_attnum <= 0)
        return {ERRCODE_UNDEFINED_COLUMN,
                psprintf("causal message table \"%s\" has no column \"%s\"", relname, conversation), nullptr};
    where->conversation = static_cast<AttrNumber>(conversation_attnum);
    for (const MessageColumn& wanted : kMessageColumns) {
        const int attnum = SPI_fnumber(desc, wanted.name);
        if (attnum <= 0 && std::strcmp(wanted.name, "written_by") == 0) continue;
        if (attnum <= 0)
            return {ERRCODE_UNDEFINED_COLUMN,
                    psprintf("causal message table \"%s\" has no column \"%s\"", relname, wanted.name), nullptr};
        const Oid type = TupleDescAttr(desc, attnum - 1)->atttypid;
        const Oid wanted_type = message_column_type(wanted);
        if (type != wanted_type)
            return {ERRCODE_DATATYPE_MISMATCH,
                    psprintf("column \"%s\" of causal message table \"%s\" has type %s, not %s", wanted.name, relname,
                             format_type_be(type), format_type_be(wanted_type)),
                    nullptr};
        where->*(wanted.attnum) = static_cast<AttrNumber>(attnum);
    }
    return ShapeProblem{};
}

Oid causal_namespace() { return get_namespace_oid("causal", true); }

Oid replication_role() { return get_role_oid(kReplicationRole, true); }

namespace {

ShapeProblem problem(int sqlstate, const char* text, const char* hint) { return ShapeProblem{sqlstate, text, hint}; }

const char* const kRefusedHint =
    "A message table runs no code but a superuser's in the processes that replicate it: PostgreSQL's apply "
    "worker, pg_causal's relay and causal.enable(). Allowed: built-in types, immutable built-in functions, and "
    "in defaults now(), gen_random_uuid() and nextval() of the table's own sequence. A superuser may change it.";

// A function of pg_causal's own, by name in its schema.
Oid causal_function(const char* name) {
    const Oid schema = causal_namespace();
    if (!OidIsValid(schema)) return InvalidOid;
    CatCList* found = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
    Oid oid = InvalidOid;
    for (int i = 0; i < found->n_members; ++i) {
        const auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(&found->members[i]->tuple));
        if (proc->pronamespace == schema && proc->pronargs == 0) oid = proc->oid;
    }
    ReleaseSysCacheList(found);
    return oid;
}

// A type of pg_causal's, by name in its schema.
Oid causal_type(const char* name) {
    const Oid schema = causal_namespace();
    return OidIsValid(schema) ? GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name),
                                                ObjectIdGetDatum(schema))
                              : InvalidOid;
}

}  // namespace

Oid message_column_type(const MessageColumn& c) {
    if (std::strcmp(c.type, "uuid") == 0) return UUIDOID;
    if (std::strcmp(c.type, "text") == 0) return TEXTOID;
    if (std::strcmp(c.type, "bigint") == 0) return INT8OID;
    if (std::strcmp(c.type, "causal.hlc") == 0) return causal_type("hlc");
    if (std::strcmp(c.type, "causal.hlc[]") == 0) return get_array_type(causal_type("hlc"));
    return get_array_type(causal_type("copy"));  // causal.copy[]
}

namespace {

bool member_of_pg_causal(Oid classid, Oid objid) {
    const Oid extension = get_extension_oid("pg_causal", true);
    return OidIsValid(extension) && getExtensionOfObject(classid, objid) == extension;
}

// Whether `type` and everything it is made of belong to superusers: only a
// type's owner may give it input, output or cast functions, and a domain
// constraints.
bool type_allowed(Oid type, int depth = 0) {
    if (depth > 32) return false;
    HeapTuple tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
    if (!HeapTupleIsValid(tuple)) return false;
    const auto* form = reinterpret_cast<Form_pg_type>(GETSTRUCT(tuple));
    bool allowed = superuser_arg(form->typowner);
    const char kind = form->typtype;
    const Oid base = form->typbasetype, relid = form->typrelid;
    const Oid element = IsTrueArrayType(form) ? form->typelem : InvalidOid;
    ReleaseSysCache(tuple);
    if (allowed && kind == TYPTYPE_DOMAIN) allowed = type_allowed(base, depth + 1);
    if (allowed && OidIsValid(element)) allowed = type_allowed(element, depth + 1);
    if (allowed && kind == TYPTYPE_RANGE) allowed = type_allowed(get_range_subtype(type), depth + 1);
    if (allowed && kind == TYPTYPE_MULTIRANGE) allowed = type_allowed(get_multirange_range(type), depth + 1);
    if (allowed && kind == TYPTYPE_COMPOSITE && OidIsValid(relid)) {
        for (AttrNumber a = 1; allowed; ++a) {
            HeapTuple attribute = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(a));
            if (!HeapTupleIsValid(attribute)) break;
            const auto* att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(attribute));
            if (!att->attisdropped) allowed = type_allowed(att->atttypid, depth + 1);
            ReleaseSysCache(attribute);
        }
    }
    return allowed;
}

const char* type_refusal(Oid type) {
    return psprintf("type %s belongs to a role that is not a superuser, or is made of such a type",
                    format_type_be(type));
}

enum class Context { Immutable, Default };

struct Walk {
    Oid relid;
    Context context;
    Oid new_msg_id;
    const char* refused;  // what was found, first
    List* sequences;      // nextval()'s, for the privilege check
};

bool function_allowed(Oid function, void* context) {
    const auto* walk = static_cast<const Walk*>(context);
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
    if (!HeapTupleIsValid(tuple)) return false;
    const auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple));
    const bool immutable =
        proc->provolatile == PROVOLATILE_IMMUTABLE && !proc->proretset && proc->prokind == PROKIND_FUNCTION;
    const bool built_in = function < FirstNormalObjectId && proc->pronamespace == PG_CATALOG_NAMESPACE;
    ReleaseSysCache(tuple);
    if (immutable && (built_in || member_of_pg_causal(ProcedureRelationId, function))) return true;
    if (walk->context != Context::Default) return false;
    return function == F_NOW || function == F_TRANSACTION_TIMESTAMP || function == F_STATEMENT_TIMESTAMP ||
           function == F_CLOCK_TIMESTAMP || function == F_GEN_RANDOM_UUID ||
           (OidIsValid(walk->new_msg_id) && function == walk->new_msg_id);
}

bool refused_function(Oid function, void* context) {
    if (function_allowed(function, context)) return false;
    static_cast<Walk*>(context)->refused = psprintf("function %s", format_procedure(function));
    return true;
}

// nextval('seq'::regclass), where seq belongs to a column of this table.
bool own_sequence(const FuncExpr* call, Walk* walk) {
    if (walk->context != Context::Default || list_length(call->args) != 1 || !IsA(linitial(call->args), Const))
        return false;
    const auto* arg = static_cast<const Const*>(linitial(call->args));
    if (arg->constisnull || arg->consttype != REGCLASSOID) return false;
    const Oid sequence = DatumGetObjectId(arg->constvalue);
    Oid table = InvalidOid;
    int32 column = 0;
    if (!sequenceIsOwned(sequence, DEPENDENCY_AUTO, &table, &column) || table != walk->relid) return false;
    walk->sequences = lappend_oid(walk->sequences, sequence);
    return true;
}

bool walk_expression(Node* node, Walk* walk);
// expression_tree_walker takes its walker as an old-style C function pointer.
bool walk_children(Node* node, Walk* walk) {
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walk_expression)),
                                  walk);
}

bool walk_expression(Node* node, Walk* walk) {
    if (node == nullptr) return false;
    if (IsA(node, List) || IsA(node, CaseWhen)) return walk_children(node, walk);
    switch (nodeTag(node)) {
        case T_Var:
            if (reinterpret_cast<Var*>(node)->varattno <= 0) {
                walk->refused = "a system column";
                return true;
            }
            break;
        case T_SQLValueFunction:
            if (walk->context != Context::Default) {
                walk->refused = "CURRENT_TIMESTAMP, CURRENT_USER or the like, outside a default";
                return true;
            }
            break;
        case T_FuncExpr:
            if (reinterpret_cast<FuncExpr*>(node)->funcid == F_NEXTVAL) {
                if (own_sequence(reinterpret_cast<FuncExpr*>(node), walk)) return false;
                walk->refused = "nextval() of a sequence that does not belong to a column of this table";
                return true;
            }
            break;
        case T_Const:
        case T_OpExpr:
        case T_DistinctExpr:
        case T_NullIfExpr:
        case T_ScalarArrayOpExpr:
        case T_BoolExpr:
        case T_RelabelType:
        case T_CoerceViaIO:
        case T_ArrayCoerceExpr:
        case T_CollateExpr:
        case T_CaseExpr:
        case T_CaseTestExpr:
        case T_ArrayExpr:
        case T_RowExpr:
        case T_CoalesceExpr:
        case T_MinMaxExpr:
        case T_NullTest:
        case T_BooleanTest:
        case T_CoerceToDomain:
        case T_CoerceToDomainValue:
        case T_NextValueExpr:
            break;
        case T_SubLink:
            walk->refused = "a subquery";
            return true;
        default:
            walk->refused = psprintf("an expression of a kind pg_causal does not allow (node %d)",
                                     static_cast<int>(nodeTag(node)));
            return true;
    }
    const Oid type = exprType(node);
    if (!type_allowed(type)) {
        walk->refused = type_refusal(type);
        return true;
    }
    if (check_functions_in_node(node, refused_function, walk)) return true;
    return walk_children(node, walk);
}

// What of the stored expression `text` is not on the list, or nullptr.
const char* refused_in(const char* text, Oid relid, Context context, List** sequences = nullptr) {
    Walk walk = {relid, context, causal_function("new_msg_id"), nullptr, NIL};
    (void)walk_expression(static_cast<Node*>(stringToNode(text)), &walk);
    if (sequences != nullptr) *sequences = walk.sequences;
    return walk.refused;
}

// A text column of a catalog tuple, or nullptr.
char* catalog_text(HeapTuple tuple, Relation catalog, int attnum) {
    bool isnull = false;
    const Datum value = heap_getattr(tuple, attnum, RelationGetDescr(catalog), &isnull);
    return isnull ? nullptr : TextDatumGetCString(value);
}

// Scans `catalog` through `index` for rows whose `attnum` is `relid`, and
// calls visit(tuple, catalog) on each until it returns a problem.
template <typename Visit>
ShapeProblem scan(Oid catalog_oid, Oid index, AttrNumber attnum, Oid relid, Visit visit) {
    Relation catalog = table_open(catalog_oid, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, attnum, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(catalog, index, true, nullptr, 1, &key);
    ShapeProblem found;
    HeapTuple tuple;
    while (!found && HeapTupleIsValid(tuple = systable_getnext(scan))) found = visit(tuple, catalog);
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);
    return found;
}

// The functions of pg_causal's three triggers, and no other of its own.
bool our_trigger_function(Oid function) {
    for (const char* name : {"message_trigger", "message_stored", "message_truncate"})
        if (function == causal_function(name)) return true;
    return false;
}

ShapeProblem relation_problem(Oid relid, Form_pg_class rel) {
    if (rel->relkind != RELKIND_RELATION)
        return problem(ERRCODE_WRONG_OBJECT_TYPE, "it must be a plain table", nullptr);
    if (rel->relpersistence != RELPERSISTENCE_PERMANENT)
        return problem(ERRCODE_INVALID_TABLE_DEFINITION, "it must be a permanent table: logical replication carries no other",
                       "ALTER TABLE ... SET LOGGED.");
    if (rel->relam != HEAP_TABLE_AM_OID)
        return problem(ERRCODE_INVALID_TABLE_DEFINITION, "it must use the heap access method",
                       "ALTER TABLE ... SET ACCESS METHOD heap.");
    if (OidIsValid(rel->reloftype))
        return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                       psprintf("it must not be a typed table (OF %s)", format_type_be(rel->reloftype)),
                       "ALTER TYPE changes a typed table's columns where the DDL guard does not look: ALTER TABLE "
                       "... NOT OF.");
    const auto inherits = [&](Oid index, AttrNumber attnum) {
        return scan(InheritsRelationId, index, attnum, relid, [](HeapTuple, Relation) {
            return problem(ERRCODE_INVALID_TABLE_DEFINITION, "it must have no inheritance parents, children or partitions",
                           "Rows written to a child do not pass the parent's triggers: they would reach every region "
                           "unstamped.");
        });
    };
    if (rel->relispartition) return inherits(InheritsRelidSeqnoIndexId, Anum_pg_inherits_inhrelid);
    if (ShapeProblem p = inherits(InheritsRelidSeqnoIndexId, Anum_pg_inherits_inhrelid)) return p;
    if (ShapeProblem p = inherits(InheritsParentIndexId, Anum_pg_inherits_inhparent)) return p;
    return scan(RewriteRelationId, RewriteRelRulenameIndexId, Anum_pg_rewrite_ev_class, relid,
                [](HeapTuple tuple, Relation) {
                    const auto* rule = reinterpret_cast<Form_pg_rewrite>(GETSTRUCT(tuple));
                    return problem(ERRCODE_INSUFFICIENT_PRIVILEGE,
                                   psprintf("rule %s would rewrite what pg_causal writes to it",
                                            quote_identifier(NameStr(rule->rulename))),
                                   "A rule runs its owner's statements in place of, or beside, every write to "
                                   "the table, pg_causal's and the replication workers' included. Drop it.");
                });
}

ShapeProblem triggers_problem(Oid relid) {
    return scan(TriggerRelationId, TriggerRelidNameIndexId, Anum_pg_trigger_tgrelid, relid,
                [](HeapTuple tuple, Relation) {
                    const auto* trigger = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
                    const bool in_workers =
                        trigger->tgenabled == TRIGGER_FIRES_ALWAYS || trigger->tgenabled == TRIGGER_FIRES_ON_REPLICA;
                    if (trigger->tgisinternal || !in_workers || our_trigger_function(trigger->tgfoid))
                        return ShapeProblem{};
                    return problem(ERRCODE_INSUFFICIENT_PRIVILEGE,
                                   psprintf("trigger %s would fire on rows replicated from other regions",
                                            quote_identifier(NameStr(trigger->tgname))),
                                   "The replication workers run with rights the table's owner lacks: a trigger "
                                   "enabled ALWAYS or REPLICA would run the owner's code with them. Enable it "
                                   "for local writes only (ENABLE TRIGGER), or LISTEN (causal.enable(..., "
                                   "notify => true)).");
                });
}

ShapeProblem constraints_problem(Oid relid) {
    return scan(ConstraintRelationId, ConstraintRelidTypidNameIndexId, Anum_pg_constraint_conrelid, relid,
                [relid](HeapTuple tuple, Relation catalog) {
                    const auto* constraint = reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tuple));
                    const char* name = quote_identifier(NameStr(constraint->conname));
                    if (constraint->contype == CONSTRAINT_FOREIGN)
                        return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                                       psprintf("foreign key %s: rows replicated from other regions are stored "
                                                "without its check, so it could not hold in every region",
                                                name),
                                       "PostgreSQL's apply worker stores rows in replica mode, which skips "
                                       "foreign key checks. Check the reference in the application, or point "
                                       "a foreign key from the other table at this one.");
                    if (constraint->contype == CONSTRAINT_EXCLUSION)
                        return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                                       psprintf("exclusion constraint %s: rows written in different regions "
                                                "could violate it together",
                                                name),
                                       "Rows from other regions would collide on it and stop replication. Drop it.");
                    if (constraint->contype != CONSTRAINT_CHECK) return ShapeProblem{};
                    const char* expression = catalog_text(tuple, catalog, Anum_pg_constraint_conbin);
                    const char* refused = expression ? refused_in(expression, relid, Context::Immutable) : nullptr;
                    if (refused == nullptr) return ShapeProblem{};
                    return problem(ERRCODE_INSUFFICIENT_PRIVILEGE,
                                   psprintf("check constraint %s uses %s", name, refused), kRefusedHint);
                });
}

AttrNumber attnum_of(Oid relid, const char* name) {
    HeapTuple tuple = SearchSysCacheAttName(relid, name);
    if (!HeapTupleIsValid(tuple)) return InvalidAttrNumber;
    const AttrNumber attnum = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tuple))->attnum;
    ReleaseSysCache(tuple);
    return attnum;
}

ShapeProblem indexes_problem(Oid relid) {
    const AttrNumber msg_id = attnum_of(relid, "msg_id");
    return scan(IndexRelationId, IndexIndrelidIndexId, Anum_pg_index_indrelid, relid,
                [relid, msg_id](HeapTuple tuple, Relation catalog) {
                    const auto* index = reinterpret_cast<Form_pg_index>(GETSTRUCT(tuple));
                    const char* name =
                        DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(index->indexrelid)));
                    bool has_msg_id = false;
                    for (int i = 0; i < index->indnkeyatts; ++i)
                        has_msg_id = has_msg_id || (msg_id != InvalidAttrNumber && index->indkey.values[i] == msg_id);
                    if (index->indisunique && !has_msg_id)
                        return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                                       psprintf("unique index %s does not include msg_id", name),
                                       "Rows written in different regions would collide on it when they "
                                       "replicate. Drop it, or add msg_id to its columns.");
                    for (const int attnum : {Anum_pg_index_indexprs, Anum_pg_index_indpred}) {
                        const char* expression = catalog_text(tuple, catalog, attnum);
                        const char* refused = expression ? refused_in(expression, relid, Context::Immutable) : nullptr;
                        if (refused != nullptr)
                            return problem(ERRCODE_INSUFFICIENT_PRIVILEGE,
                                           psprintf("index %s uses %s in its %s", name, refused,
                                                    attnum == Anum_pg_index_indexprs ? "expressions" : "predicate"),
                                           kRefusedHint);
                    }
                    return ShapeProblem{};
                });
}

struct ColumnFacts {
    AttrNumber attnum;
    Oid type;  // InvalidOid: dropped, or no such column
    Oid collation;
    bool not_null, generated, identity;
    char* default_text;  // the stored default or generation expression
};

ColumnFacts column_facts(Oid relid, AttrNumber attnum) {
    ColumnFacts facts = {attnum, InvalidOid, InvalidOid, false, false, false, nullptr};
    HeapTuple tuple = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
    if (!HeapTupleIsValid(tuple)) return facts;
    const auto* att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tuple));
    if (!att->attisdropped) {
        facts.type = att->atttypid;
        facts.collation = att->attcollation;
        facts.not_null = att->attnotnull;
        facts.generated = att->attgenerated != '\0';
        facts.identity = att->attidentity != '\0';
        if (att->atthasdef) {
            (void)scan(AttrDefaultRelationId, AttrDefaultIndexId, Anum_pg_attrdef_adrelid, relid,
                       [&](HeapTuple def, Relation catalog) {
                           if (reinterpret_cast<Form_pg_attrdef>(GETSTRUCT(def))->adnum == attnum)
                               facts.default_text = catalog_text(def, catalog, Anum_pg_attrdef_adbin);
                           return ShapeProblem{};
                       });
        }
    }
    ReleaseSysCache(tuple);
    return facts;
}

ShapeProblem columns_problem(Oid relid, int natts, List** sequences) {
    for (AttrNumber attnum = 1; attnum <= natts; ++attnum) {
        const ColumnFacts c = column_facts(relid, attnum);
        if (!OidIsValid(c.type)) continue;  // dropped
        const char* name = quote_identifier(get_attname(relid, attnum, false));
        if (!type_allowed(c.type))
            return problem(ERRCODE_INSUFFICIENT_PRIVILEGE, psprintf("column %s has %s", name, type_refusal(c.type)),
                           kRefusedHint);
        if (c.default_text == nullptr) continue;
        List* used = NIL;
        const char* refused =
            refused_in(c.default_text, relid, c.generated ? Context::Immutable : Context::Default, &used);
        if (refused != nullptr)
            return problem(ERRCODE_INSUFFICIENT_PRIVILEGE,
                           psprintf("the %s of column %s uses %s", c.generated ? "generation expression" : "default",
                                    name, refused),
                           kRefusedHint);
        *sequences = list_concat(*sequences, used);
    }
    return ShapeProblem{};
}

ShapeProblem owners_part(Oid relid, List** sequences) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        return problem(ERRCODE_UNDEFINED_TABLE, psprintf("relation with OID %u does not exist", relid), nullptr);
    FormData_pg_class rel = *reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple));
    ReleaseSysCache(tuple);
    if (ShapeProblem p = relation_problem(relid, &rel)) return p;
    if (ShapeProblem p = triggers_problem(relid)) return p;
    if (ShapeProblem p = constraints_problem(relid)) return p;
    if (ShapeProblem p = indexes_problem(relid)) return p;
    return columns_problem(relid, rel.relnatts, sequences);
}

const char* const kKeepHint = "pg_causal's columns, and the conversation column, stay as causal.enable() made them.";

// pg_causal's own columns and the conversation: as enable() made them.
ShapeProblem stamp_columns_problem(Oid relid, const char* conversation) {
    const Oid new_msg_id = causal_function("new_msg_id");
    for (const MessageColumn& wanted : kMessageColumns) {
        const AttrNumber attnum = attnum_of(relid, wanted.name);
        if (attnum == InvalidAttrNumber)
            return problem(ERRCODE_INVALID_TABLE_DEFINITION, psprintf("it must keep its column %s", wanted.name),
                           kKeepHint);
        const ColumnFacts c = column_facts(relid, attnum);
        const Oid type = message_column_type(wanted);
        if (c.type != type)
            return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                           psprintf("column %s must keep type %s, not %s", wanted.name, format_type_be(type),
                                    format_type_be(c.type)),
                           kKeepHint);
        if (c.generated || c.identity)
            return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                           psprintf("column %s must not be %s", wanted.name,
                                    c.generated ? "generated" : "an identity column"),
                           "pg_causal stamps it; a generated or identity value would restamp messages.");
        // A collation of another role's could go, and take the column with
        // it (DROP COLLATION ... CASCADE): pg_causal's text is the database's.
        if (OidIsValid(c.collation) && c.collation != DEFAULT_COLLATION_OID)
            return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                           psprintf("column %s must keep the database's collation", wanted.name), kKeepHint);
        if (c.not_null != wanted.not_null)
            return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                           psprintf("column %s must %s", wanted.name, wanted.not_null ? "stay NOT NULL" : "allow NULL"),
                           kKeepHint);
        // The default enable() gives it, and no other.
        Node* given = c.default_text ? static_cast<Node*>(stringToNode(c.default_text)) : nullptr;
        bool as_made = false;
        if (wanted.default_sql == nullptr)
            as_made = given == nullptr;
        else if (std::strcmp(wanted.name, "msg_id") == 0)
            as_made = given != nullptr && IsA(given, FuncExpr) && reinterpret_cast<FuncExpr*>(given)->funcid == new_msg_id &&
                      reinterpret_cast<FuncExpr*>(given)->args == NIL;
        else  // '{}'
            as_made = given != nullptr && IsA(given, Const) && !reinterpret_cast<Const*>(given)->constisnull &&
                      reinterpret_cast<Const*>(given)->consttype == type &&
                      ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(reinterpret_cast<Const*>(given)->constvalue)),
                                     ARR_DIMS(DatumGetArrayTypeP(reinterpret_cast<Const*>(given)->constvalue))) == 0;
        if (!as_made)
            return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                           wanted.default_sql ? psprintf("column %s must keep its default %s", wanted.name, wanted.default_sql)
                                              : psprintf("column %s must have no default", wanted.name),
                           kKeepHint);
    }
    const AttrNumber attnum = conversation ? attnum_of(relid, conversation) : InvalidAttrNumber;
    if (attnum == InvalidAttrNumber)
        return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                       psprintf("it must keep its column %s", conversation ? conversation : "(the conversation)"),
                       kKeepHint);
    const ColumnFacts conversation_facts = column_facts(relid, attnum);
    if (!OidIsValid(conversation_facts.type))
        return problem(ERRCODE_INVALID_TABLE_DEFINITION, psprintf("it must keep its column %s", conversation),
                       kKeepHint);
    if (conversation_facts.generated)
        return problem(ERRCODE_INVALID_TABLE_DEFINITION,
                       psprintf("its conversation column %s must not be generated", conversation), kKeepHint);
    return ShapeProblem{};
}

ShapeProblem our_triggers_problem(Oid relid) {
    static const struct {
        const char* trigger;
        const char* function;
    } ours[] = {{"causal_message", "message_trigger"},
                {"causal_message_stored", "message_stored"},
                {"causal_message_truncate", "message_truncate"}};
    int found = 0;
    (void)scan(TriggerRelationId, TriggerRelidNameIndexId, Anum_pg_trigger_tgrelid, relid,
               [&](HeapTuple tuple, Relation) {
                   const auto* trigger = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
                   for (const auto& our : ours)
                       if (std::strcmp(NameStr(trigger->tgname), our.trigger) == 0 &&
                           trigger->tgfoid == causal_function(our.function) &&
                           trigger->tgenabled == TRIGGER_FIRES_ALWAYS)
                           ++found;
                   return ShapeProblem{};
               });
    if (found == 3) return ShapeProblem{};
    return problem(ERRCODE_INSUFFICIENT_PRIVILEGE, "pg_causal's triggers must stay on it, enabled ALWAYS",
                   "Only a superuser can change them; causal.disable() (for causal_admin) turns a message table back "
                   "into an ordinary table.");
}

ShapeProblem replica_identity_problem(Oid relid) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))  // dropped meanwhile: the shape takes no lock
        return problem(ERRCODE_UNDEFINED_TABLE, psprintf("relation with OID %u does not exist", relid), nullptr);
    const char identity = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relreplident;
    ReleaseSysCache(tuple);
    const AttrNumber msg_id = attnum_of(relid, "msg_id");
    bool on_msg_id = false;
    (void)scan(IndexRelationId, IndexIndrelidIndexId, Anum_pg_index_indrelid, relid, [&](HeapTuple t, Relation catalog) {
        const auto* index = reinterpret_cast<Form_pg_index>(GETSTRUCT(t));
        bool isnull = false;
        (void)heap_getattr(t, Anum_pg_index_indpred, RelationGetDescr(catalog), &isnull);
        if (index->indisreplident && index->indisunique && index->indisvalid && isnull && index->indnkeyatts == 1 &&
            index->indkey.values[0] == msg_id)
            on_msg_id = true;
        return ShapeProblem{};
    });
    if (identity == REPLICA_IDENTITY_INDEX && on_msg_id) return ShapeProblem{};
    return problem(ERRCODE_INVALID_TABLE_DEFINITION, "its replica identity must stay the unique index on msg_id",
                   "Every region finds a message by its msg_id.");
}

// PostgreSQL 15's apply and table sync workers check their own rights on
// each table (and look it up in its schema) before any trigger: a message
// table the replication role may not write stops the link of every table.
ShapeProblem rights_problem(Oid relid, List* sequences) {
    // A catalog from before the role (this library, restarted into, runs
    // with it until ALTER EXTENSION ... UPDATE): superusers replicate there.
    const Oid role = replication_role();
    if (!OidIsValid(role)) return ShapeProblem{};
    const auto missing = [&](const char* what) {
        return problem(ERRCODE_INSUFFICIENT_PRIVILEGE,
                       psprintf("the replication role %s must keep %s", kReplicationRole, what),
                       "The replication workers run as that role: without the right, every link carrying the table "
                       "would stop. causal.enable() grants it.");
    };
    if (pg_namespace_aclcheck(get_rel_namespace(relid), role, ACL_USAGE) != ACLCHECK_OK)
        return missing("USAGE on the table's schema");
    // pg_class_aclcheck grants when any one of the bits is held: one at a time.
    for (const AclMode mode : {ACL_SELECT, ACL_INSERT, ACL_UPDATE})
        if (pg_class_aclcheck(relid, role, mode) != ACLCHECK_OK) return missing("SELECT, INSERT and UPDATE on the table");
    ListCell* cell;
    foreach (cell, sequences)
        if (pg_class_aclcheck(lfirst_oid(cell), role, ACL_USAGE) != ACLCHECK_OK)
            return missing(psprintf("USAGE on sequence %s, which a default draws from",
                                    quote_identifier(get_rel_name(lfirst_oid(cell)))));
    return ShapeProblem{};
}

}  // namespace

bool is_message_table(Oid relid, char** conversation) {
    *conversation = nullptr;
    bool ours = false;
    const Oid before = causal_function("message_trigger");
    (void)scan(TriggerRelationId, TriggerRelidNameIndexId, Anum_pg_trigger_tgrelid, relid,
               [&](HeapTuple tuple, Relation catalog) {
                   const auto* trigger = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
                   if (!our_trigger_function(trigger->tgfoid)) return ShapeProblem{};
                   ours = true;
                   if (trigger->tgfoid == before && std::strcmp(NameStr(trigger->tgname), "causal_message") == 0 &&
                       trigger->tgnargs >= 1) {
                       bool isnull = false;
                       const Datum args = heap_getattr(tuple, Anum_pg_trigger_tgargs, RelationGetDescr(catalog), &isnull);
                       if (!isnull) *conversation = pstrdup(VARDATA_ANY(DatumGetByteaPP(args)));
                   }
                   return ShapeProblem{};
               });
    return ours && get_rel_relkind(relid) == RELKIND_RELATION;
}

ShapeProblem owners_part_problem(Oid relid) {
    List* sequences = NIL;
    return owners_part(relid, &sequences);
}

ShapeProblem message_table_problem(Oid relid, const char* conversation) {
    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
        return problem(ERRCODE_UNDEFINED_TABLE, psprintf("relation with OID %u does not exist", relid), nullptr);
    if (ShapeProblem p = our_triggers_problem(relid)) return p;
    List* sequences = NIL;
    if (ShapeProblem p = owners_part(relid, &sequences)) return p;
    if (ShapeProblem p = stamp_columns_problem(relid, conversation)) return p;
    if (ShapeProblem p = replica_identity_problem(relid)) return p;
    return rights_problem(relid, sequences);
}

}  // namespace causal::pg

using namespace causal::pg;

namespace {

// A problem as the row (sqlstate, problem, hint) of the SQL functions.
Datum problem_rows(FunctionCallInfo fcinfo, const ShapeProblem& p) {
    InitMaterializedSRF(fcinfo, 0);
    if (!p) return Datum(0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Datum values[3] = {CStringGetTextDatum(unpack_sql_state(p.sqlstate)), CStringGetTextDatum(p.problem),
                       p.hint ? CStringGetTextDatum(p.hint) : Datum(0)};
    bool nulls[3] = {false, false, p.hint == nullptr};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    return Datum(0);
}

}  // namespace

// causal.message_table_problem(table, conversation): what keeps the table
// from being a well-formed message table, or no row.
CAUSAL_FUNCTION(message_table_problem) {
    if (PG_ARGISNULL(0)) return problem_rows(fcinfo, {});
    const char* conversation = PG_ARGISNULL(1) ? nullptr : NameStr(*PG_GETARG_NAME(1));
    return problem_rows(fcinfo, message_table_problem(PG_GETARG_OID(0), conversation));
}

// causal.unfit_table(table): what of the table its owner controls keeps it
// from becoming a message table, or no row.
CAUSAL_FUNCTION(unfit_table) {
    if (PG_ARGISNULL(0)) return problem_rows(fcinfo, {});
    return problem_rows(fcinfo, owners_part_problem(PG_GETARG_OID(0)));
}

// causal.message_columns(): pg_causal's columns, as enable() adds them.
CAUSAL_FUNCTION(message_columns) {
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const MessageColumn& c : kMessageColumns) {
        // As enable() adds it to a table that may hold rows: NOT NULL only
        // with a default; enable() sets the others NOT NULL once it has
        // stamped the rows.
        const char* definition =
            c.default_sql ? psprintf("%s NOT NULL DEFAULT %s", c.type, c.default_sql) : c.type;
        Datum values[5] = {CStringGetTextDatum(c.name), ObjectIdGetDatum(message_column_type(c)),
                           CStringGetTextDatum(definition), BoolGetDatum(c.not_null),
                           c.default_sql ? CStringGetTextDatum(c.default_sql) : Datum(0)};
        bool nulls[5] = {false, false, false, false, c.default_sql == nullptr};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return Datum(0);
}
