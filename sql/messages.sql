-- Causal message tables, the model: what a message table carries (its
-- columns, the copy type, the quarantine of rows the apply path refused),
-- the C++ triggers that guard both of its write paths
-- (extension/table/message_trigger.cpp), the shape of a message table
-- (extension/table/table_shape.hpp) and causal.message_tables(), which says
-- which tables are message tables and whether each is still one. How a
-- table becomes one is sql/enable.sql; what the mesh publishes of them,
-- sql/publications.sql; the event triggers that keep tenants from changing
-- them, sql/guard.sql.

-- Rows the replication apply path could not take, kept with the reason. The
-- apply path never raises (that would stop replication for good); this is
-- where what it cannot take goes instead. Local to each region.
CREATE TABLE causal.quarantine (
    id             bigserial PRIMARY KEY,
    table_name     text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason         text NOT NULL,
    row_data       jsonb NOT NULL
);
COMMENT ON TABLE causal.quarantine IS 'replicated rows the apply path could not take, with the reason';
-- The rows are messages: only causal_admin reads them.
GRANT SELECT, DELETE ON causal.quarantine TO causal_admin;

-- Deletions a region wrote in an epoch the mesh had fenced, before it knew
-- (causal.is_fenced_deletion()): like that region's inserts of the same
-- window, which are orphans, they delete nothing (src/core/copies.hpp).
-- Each region lists here those that reached it, for the operator: `state`
-- is what the deletion did here: 'kept' (it arrived after its fence; the
-- message kept its body), 'awaiting body' (its tombstone erased the body
-- here, in the deleting region or before the fence arrived; the relay asks
-- the peers for a live copy), 'restored' (a live copy brought the body
-- back), 'erased' (an active region deleted the message since). A DELETE
-- in an active region erases the message everywhere, whatever its state.
CREATE TABLE causal.fenced_deletions (
    message_table  regclass NOT NULL,
    msg_id         uuid NOT NULL,
    written_by     text NOT NULL,
    deleted_at     causal.hlc NOT NULL,
    state          text NOT NULL CHECK (state IN ('kept', 'awaiting body', 'restored', 'erased')),
    noted_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (message_table, msg_id)
);
COMMENT ON TABLE causal.fenced_deletions IS 'deletions a fenced region wrote, which deleted nothing, and what became of each message here';
GRANT SELECT, DELETE ON causal.fenced_deletions TO causal_admin;

-- A copy of a message other than the one its row is headed by: a retry in
-- another region gets an hlc of its own, and clients may have replied to
-- either. A message table's `copies` column keeps every such copy's stamp,
-- so that every hlc the message was ever given keeps naming it, and the
-- merge can present the copy an active region acknowledged over one a
-- fenced region wrote (src/core/copies.hpp).
CREATE TYPE causal.copy AS (
    hlc     causal.hlc,
    deps    causal.hlc[],
    region  text,
    epoch   bigint
);
COMMENT ON TYPE causal.copy IS 'the stamp of one copy of a message: hlc, deps, region, epoch';

CREATE FUNCTION causal.new_msg_id() RETURNS uuid
    AS 'MODULE_PATHNAME', 'new_msg_id' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION causal.new_msg_id() IS
    'a time-ordered UUID (version 7): the default msg_id, cheap to index';

-- The triggers' functions. Not for PUBLIC: a role that could put them on a
-- table of its own could feed them any row. causal.enable() (SECURITY
-- DEFINER) creates the triggers; firing one needs no privilege.
CREATE FUNCTION causal.message_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_trigger' LANGUAGE C;
CREATE FUNCTION causal.message_stored() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_stored' LANGUAGE C;
CREATE FUNCTION causal.message_truncate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_truncate' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.message_trigger(), causal.message_stored(), causal.message_truncate() FROM PUBLIC;

CREATE FUNCTION causal.table_stats(
    OUT relid regclass,
    OUT local_inserts bigint,
    OUT applied bigint,
    OUT duplicates bigint,
    OUT winners_replaced bigint,
    OUT orphans bigint,
    OUT quarantined bigint,
    OUT offset_rejections bigint,
    OUT announced bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'table_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.table_stats() IS
    'per causal message table the caller may read, counted since the server started';

CREATE VIEW causal.stat_tables AS
SELECT s.* FROM causal.table_stats() s
 WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) s.relid);
COMMENT ON VIEW causal.stat_tables IS 'per causal message table the caller may read, counted since the server started';
GRANT SELECT ON causal.stat_tables TO PUBLIC;

-- pg_causal's columns of a message table, as enable() adds them: the list
-- is extension/table/table_shape.cpp's, which the triggers and the shape check
-- read too. not_null: NOT NULL once enable() has stamped the rows;
-- default_sql: the one default the column may have (NULL: none).
CREATE FUNCTION causal.message_columns(OUT name text, OUT type regtype, OUT definition text, OUT not_null boolean,
                                       OUT default_sql text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'message_columns' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- The index of `relation` whose key columns are exactly `columns`, if any:
-- enable() recognizes its own indexes by what they index, not by name.
CREATE FUNCTION causal.index_on(relation regclass, columns name[], must_be_unique boolean)
RETURNS regclass LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.indexrelid::regclass FROM pg_index i
   WHERE i.indrelid = relation AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
     AND (i.indisunique OR NOT must_be_unique)
     AND i.indnkeyatts = cardinality(columns)
     AND ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum
               ORDER BY k.n) = columns
   ORDER BY i.indexrelid LIMIT 1
$$;

-- The index catch_up reads a conversation's deletions by: a btree on
-- (conversation, deleted_at), whole or over the tombstones alone.
CREATE FUNCTION causal.deletions_index(relation regclass, conversation name)
RETURNS regclass LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.indexrelid::regclass FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE i.indrelid = relation AND i.indisvalid AND i.indexprs IS NULL AND i.indnkeyatts = 2
     AND c.relam = (SELECT a.oid FROM pg_am a WHERE a.amname = 'btree')
     AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid) = '(deleted_at IS NOT NULL)')
     AND ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum
               ORDER BY k.n) = ARRAY[conversation, 'deleted_at']::name[]
   ORDER BY i.indexrelid LIMIT 1
$$;
REVOKE ALL ON FUNCTION causal.deletions_index(regclass, name) FROM PUBLIC;

-- The latest stamp a row carries (its hlc, its tombstone's, its copies'),
-- which only grows: the key the relay pages a peer's rows along, through
-- the index enable() makes on it (causal.stamp_index()). Anyone's: every
-- role that writes to a message table evaluates it.
CREATE FUNCTION causal.latest_stamp(hlc causal.hlc, deleted_at causal.hlc, copies causal.copy[])
    RETURNS causal.hlc AS 'MODULE_PATHNAME', 'latest_stamp' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION causal.latest_stamp(causal.hlc, causal.hlc, causal.copy[]) IS
    'the latest of a message row''s stamps: hlc, deleted_at, its copies'' hlcs';

-- The index the relay pages along: a btree on (latest_stamp(hlc,
-- deleted_at, copies), msg_id), found by what it indexes.
CREATE FUNCTION causal.stamp_index(relation regclass)
RETURNS regclass LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.indexrelid::regclass FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE i.indrelid = relation AND i.indisvalid AND i.indpred IS NULL AND i.indnkeyatts = 2
     AND c.relam = (SELECT a.oid FROM pg_am a WHERE a.amname = 'btree')
     AND pg_get_indexdef(i.indexrelid, 1, true) = 'causal.latest_stamp(hlc, deleted_at, copies)'
     AND pg_get_indexdef(i.indexrelid, 2, true) = 'msg_id'
   ORDER BY i.indexrelid LIMIT 1
$$;
-- Anyone's: what it reads is in catalogs PUBLIC reads, and the relay asks a
-- peer with whatever login the link uses.

-- pg_causal's three trigger functions: message_trigger, message_stored,
-- message_truncate, in the order of their triggers causal_message,
-- causal_message_stored, causal_message_truncate.
CREATE FUNCTION causal.trigger_functions() RETURNS oid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ARRAY['causal.message_trigger()'::regprocedure, 'causal.message_stored()'::regprocedure,
               'causal.message_truncate()'::regprocedure]::oid[]
$$;

-- What of `relation` its owner controls is outside what a message table
-- may be (extension/table/table_shape.hpp, the allow-list), the first thing
-- found, or no row: its SQLSTATE, the problem and a hint. What enable()
-- requires before it changes a table.
CREATE FUNCTION causal.unfit_table(relation regclass, OUT sqlstate text, OUT problem text, OUT hint text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'unfit_table' LANGUAGE C STABLE;

-- What keeps `message_table` from being the message table causal.enable()
-- makes, the first thing found, or no row: the owner's part as above,
-- pg_causal's triggers and columns, the replica identity, the replication
-- role's rights. The one definition of a well-formed message table, for the
-- DDL guard, causalctl and enable() itself.
CREATE FUNCTION causal.message_table_problem(message_table regclass, conversation name,
                                             OUT sqlstate text, OUT problem text, OUT hint text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'message_table_problem' LANGUAGE C STABLE;

-- enable()'s first step: the table's ACCESS EXCLUSIVE lock, then what
-- enable() asks of its caller, checked of the table as it is under the
-- lock. And its rows read as the owner, by a scan of the heap. Only
-- superusers (and so enable()) may call them.
-- Every causal message table of this database: a plain table carrying one
-- of pg_causal's trigger functions, with its conversation column (the
-- causal_message trigger's argument) and, when it is no longer what enable()
-- made, the first problem (causal.message_table_problem).
CREATE FUNCTION causal.message_tables(OUT relid regclass, OUT conversation name, OUT notify boolean,
                                      OUT sqlstate text, OUT problem text, OUT hint text)
RETURNS SETOF record LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT m.relid, convert_from(m.first, current_setting('server_encoding'))::name,
         coalesce(substring(m.rest FROM 1 FOR position(decode('00', 'hex') IN m.rest) - 1) = 'notify'::bytea, false),
         p.sqlstate, p.problem, p.hint
    FROM (SELECT c.oid::regclass AS relid,
                 -- the causal_message trigger's arguments: NUL-terminated
                 -- bytes, conversation then 'notify' or 'quiet'
                 substring(t.tgargs FROM 1 FOR position(decode('00', 'hex') IN t.tgargs) - 1) AS first,
                 substring(t.tgargs FROM position(decode('00', 'hex') IN t.tgargs) + 1) AS rest
            FROM (SELECT DISTINCT t.tgrelid FROM pg_trigger t WHERE t.tgfoid = ANY (causal.trigger_functions())) ours
            JOIN pg_class c ON c.oid = ours.tgrelid AND c.relkind = 'r'
            LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'causal_message'
                                  AND t.tgfoid = 'causal.message_trigger()'::regprocedure) m
    LEFT JOIN LATERAL (SELECT * FROM causal.message_table_problem(m.relid,
                         convert_from(m.first, current_setting('server_encoding'))::name) LIMIT 1) p ON true
   ORDER BY m.relid::text
$$;
COMMENT ON FUNCTION causal.message_tables() IS
    'every causal message table of this database, and what is wrong with it, if anything';

SELECT pg_catalog.pg_extension_config_dump('causal.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('causal.quarantine_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('causal.fenced_deletions', '');
