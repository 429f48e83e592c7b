-- Causal message tables: causal.enable() turns an ordinary table into one,
-- and the C++ triggers guard both of its write paths (extension/
-- message_trigger.cpp). causal.message_tables() says which tables are
-- message tables and whether each is still what enable() made; the event
-- trigger causal_guard_ddl (sql/guard.sql) keeps tenants from changing that.

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

-- Runs one of causal.enable()'s statements as the table's owner, in a
-- security-restricted operation: whatever of the owner's code it fires
-- (a CHECK constraint, an index expression) runs with the owner's rights,
-- not the admin's. Only superusers (and so enable()) may call it.
CREATE FUNCTION causal.run_as_owner(message_table regclass, statement text, replica boolean DEFAULT false)
    RETURNS void AS 'MODULE_PATHNAME', 'run_as_owner' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.run_as_owner(regclass, text, boolean) FROM PUBLIC;

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
CREATE FUNCTION causal.lock_for_enable(message_table regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'lock_for_enable' LANGUAGE C STRICT;
CREATE FUNCTION causal.unstamped_rows(message_table regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'unstamped_rows' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION causal.lock_for_enable(regclass), causal.unstamped_rows(regclass) FROM PUBLIC;

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

-- A publication's column list for a message table while peers of 0.2.0 may
-- subscribe (mesh_publication): every column PostgreSQL replicates but
-- written_by; '' (every column) otherwise.
CREATE FUNCTION causal.columns_but_written_by(message_table regclass, needed boolean) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN needed THEN ' (' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) || ')' ELSE '' END
    FROM pg_attribute a
   WHERE a.attrelid = message_table AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     AND a.attname <> 'written_by'
$$;
REVOKE ALL ON FUNCTION causal.columns_but_written_by(regclass, boolean) FROM PUBLIC;

-- The mesh's publications, made or mended, the one place that knows them:
--  * causal_mesh: pg_causal's own tables, INSERT and UPDATE. Regions and
--    fences go everywhere by every path; heartbeats only this region's own
--    (a heartbeat relayed by another region would move this region's peers'
--    stable point past messages that did not come with it).
--  * causal_messages: every message table, INSERT only, the rows this
--    region's own writes made (coalesce(written_by, crdb_region): a local
--    insert, or a tombstone of its DELETE): each message is decoded and sent
--    once per peer. A region that cannot hear a writer directly pulls its rows
--    from a peer that can (relay.cpp). Updates need not travel: a local one
--    changes nothing, and the apply path's (another copy joining a row) are
--    what each region does itself when that copy reaches it.
--  * causal_copy: the message tables again, publishing nothing: it is there
--    for a subscription's first copy, which then takes every row the peer
--    holds, whoever wrote it (a joining region copies what regions that are
--    gone wrote too).
-- Refuses one that a role other than a superuser owns, or that publishes
-- all tables: that owner decides what the mesh replicates, and DELETE or
-- TRUNCATE would wipe every region. A deletion travels as its tombstone,
-- an INSERT.
--
-- messages_in_mesh: whether causal_mesh carries the message tables too,
-- every row, as it did before 0.3.0. While a region's peers still subscribe
-- to causal_mesh alone (a mesh being updated), taking the tables out of it
-- would make them skip this region's messages for good; so the update
-- script puts them in (true), NULL keeps what is there, and `causalctl init`
-- takes them out (false) once every link subscribes to all three.
CREATE FUNCTION causal.mesh_publication(messages_in_mesh boolean DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
  spec record;
  pub pg_publication;
  this_region text := coalesce(current_setting('causal.region', true), '');
  tables text;
  member record;
  in_mesh boolean := coalesce(messages_in_mesh,
                              EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                                       WHERE p.pubname = 'causal_mesh'
                                         AND pr.prrelid IN (SELECT m.relid FROM causal.message_tables() m)));
BEGIN
  FOR spec IN VALUES ('causal_mesh', 'insert, update', true, true),
                     ('causal_messages', 'insert', true, false),
                     ('causal_copy', '', false, false) LOOP
    SELECT * INTO pub FROM pg_publication p WHERE p.pubname = spec.column1;
    IF NOT FOUND THEN
      EXECUTE format('CREATE PUBLICATION %I WITH (publish = %L)', spec.column1, spec.column2);
    ELSIF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = pub.pubowner) OR pub.puballtables THEN
      RAISE EXCEPTION 'publication "%" already exists and is not pg_causal''s', spec.column1 USING ERRCODE = '42710',
        DETAIL = format('It belongs to %s%s. Whoever owns it decides what the mesh replicates.',
                        pub.pubowner::regrole, CASE WHEN pub.puballtables THEN ' and publishes all tables' ELSE '' END),
        HINT = format('Drop it, or have a superuser own it (ALTER PUBLICATION %I OWNER TO ...).', spec.column1);
    ELSIF pub.pubdelete OR pub.pubtruncate OR pub.pubinsert <> spec.column3 OR pub.pubupdate <> spec.column4 THEN
      EXECUTE format('ALTER PUBLICATION %I SET (publish = %L)', spec.column1, spec.column2);
    END IF;
  END LOOP;
  -- While the message tables are in causal_mesh, peers may still run 0.2.0,
  -- whose tables have no written_by, and PostgreSQL's apply worker stops on
  -- a column it receives and its table lacks. So every publication then
  -- sends each table's columns but written_by (PostgreSQL 15 wants the same
  -- column list in every publication of a subscription). A column added
  -- meanwhile is sent once this runs again (enable(), or causalctl init).
  EXECUTE format('ALTER PUBLICATION causal_mesh SET TABLE causal.regions, causal.fences,
                  causal.heartbeats WHERE (region = %L)', this_region)
          || CASE WHEN in_mesh THEN (SELECT coalesce(string_agg(format(', ONLY %s', m.relid) || causal.columns_but_written_by(m.relid, in_mesh), ''), '')
                                       FROM causal.message_tables() m)
                  ELSE '' END;
  -- A table enabled before written_by existed publishes every row it holds,
  -- as every table did then, until enable() runs on it again.
  SELECT string_agg(format('ONLY %s', m.relid) || causal.columns_but_written_by(m.relid, in_mesh)
                    || CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = m.relid
                                            AND a.attname = 'written_by' AND NOT a.attisdropped)
                            THEN format(' WHERE (coalesce(written_by, crdb_region) = %L)', this_region) ELSE '' END,
                    ', ' ORDER BY m.relid::text)
    INTO tables FROM causal.message_tables() m;
  IF tables IS NOT NULL THEN
    EXECUTE 'ALTER PUBLICATION causal_messages SET TABLE ' || tables;
    EXECUTE 'ALTER PUBLICATION causal_copy SET TABLE '
            || (SELECT string_agg(format('ONLY %s', m.relid) || causal.columns_but_written_by(m.relid, in_mesh), ', ')
                  FROM causal.message_tables() m);
  ELSE
    FOR member IN SELECT p.pubname, pr.prrelid::regclass AS relid
                    FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                   WHERE p.pubname IN ('causal_messages', 'causal_copy') LOOP
      EXECUTE format('ALTER PUBLICATION %I DROP TABLE %s', member.pubname, member.relid);
    END LOOP;
  END IF;
END $$;
REVOKE ALL ON FUNCTION causal.mesh_publication(boolean) FROM PUBLIC;

CREATE FUNCTION causal.enable(
    message_table regclass,
    conversation name,
    notify boolean DEFAULT false,
    key name DEFAULT NULL,
    sent_at name DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
  qualified text;
  column_type regtype;
  col record;
  msg_id_index regclass;
  this_region text := causal.gateway_region();
  current_epoch bigint;
  problem record;
  populated boolean;
BEGIN
  IF message_table IS NULL OR conversation IS NULL THEN
    RAISE EXCEPTION 'causal.enable() needs a table and its conversation column' USING ERRCODE = '22004';
  END IF;
  -- The lock first: every check below, and every change, is of the table
  -- as it is while enable() holds it. Its owner cannot turn it into
  -- something else (a view whose rule would run as this function's
  -- definer) between a check and a use.
  PERFORM causal.lock_for_enable(message_table);
  qualified := message_table::text;
  SELECT * INTO problem FROM causal.unfit_table(message_table);
  IF FOUND THEN
    RAISE EXCEPTION 'cannot enable %: %', qualified, problem.problem USING ERRCODE = problem.sqlstate,
      HINT = problem.hint;
  END IF;

  SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
   WHERE a.attrelid = message_table AND a.attname = conversation AND a.attnum > 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'column "%" of table % does not exist', conversation, qualified
      USING ERRCODE = '42703';
  END IF;
  IF conversation IN (SELECT c.name FROM causal.message_columns() c) THEN
    RAISE EXCEPTION 'column "%" is one of pg_causal''s own columns', conversation USING ERRCODE = '42P16';
  END IF;
  IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = message_table AND a.attname = conversation
                AND a.attgenerated <> '') THEN
    RAISE EXCEPTION 'conversation column "%" of table % is generated', conversation, qualified
      USING ERRCODE = '42P16', HINT = 'A message''s conversation is what its writer gave it, in every region.';
  END IF;

  -- pg_causal's triggers go first: until they are back the table is no
  -- message table, so the DDL guard lets the changes below through, and
  -- the rows from before are stamped without them and without any of the
  -- owner's (run_as_owner's replica role fires only triggers enabled ALWAYS
  -- or REPLICA, refused above).
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message ON %s', qualified);
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message_stored ON %s', qualified);
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message_truncate ON %s', qualified);

  -- Every change to the table itself is made as its owner (run_as_owner),
  -- so that none of the owner's code runs with the caller's rights.
  -- pg_causal's columns: add the missing ones, refuse ones of another type.
  FOR col IN SELECT * FROM causal.message_columns() LOOP
    SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
     WHERE a.attrelid = message_table AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      -- msg_id without its default for now: the rows from before get theirs
      -- below (from `key`, alike in every region), not a random one.
      PERFORM causal.run_as_owner(message_table, format('ALTER TABLE %s ADD COLUMN %I %s', qualified, col.name,
                                                        CASE WHEN col.name = 'msg_id' THEN 'uuid' ELSE col.definition END));
    ELSIF column_type <> col.type THEN
      RAISE EXCEPTION 'column "%" of table % has type %, not %', col.name, qualified, column_type, col.type
        USING ERRCODE = '42804';
    ELSIF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = message_table AND a.attname = col.name
                     AND (a.attgenerated <> '' OR a.attidentity <> '')) THEN
      RAISE EXCEPTION 'column "%" of table % is generated or an identity column', col.name, qualified
        USING ERRCODE = '42P16', HINT = 'pg_causal stamps it: drop the column, or make it a plain one.';
    ELSIF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = message_table AND a.attname = col.name
                     AND a.attcollation NOT IN (0, 'pg_catalog.default'::regcollation)) THEN
      RAISE EXCEPTION 'column "%" of table % has a collation of its own', col.name, qualified
        USING ERRCODE = '42P16', HINT = 'pg_causal''s text is the database''s: DROP COLLATION ... CASCADE would take it.';
    END IF;
  END LOOP;

  -- Rows from before. Every region that holds them must stamp them alike,
  -- or each message would exist once per region: with `key` (a column that
  -- identifies a message) and `sent_at` (when it was sent), the msg_id is a
  -- hash of the key and the hlc is the time, by the reserved node 0 (ties
  -- in one millisecond numbered by msg_id), in no region, epoch 0. Without
  -- them, rows are stamped now, in this region: only where no other region
  -- is registered.
  populated := causal.unstamped_rows(message_table);
  IF populated AND (key IS NULL) <> (sent_at IS NULL) THEN
    RAISE EXCEPTION 'key and sent_at go together' USING ERRCODE = '22023',
      HINT = 'Name both: the column that identifies a message, and the one that says when it was sent.';
  END IF;
  IF populated AND key IS NOT NULL THEN
    SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
     WHERE a.attrelid = message_table AND a.attname = sent_at AND a.attnum > 0 AND NOT a.attisdropped;
    IF column_type IS NULL OR column_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype) THEN
      RAISE EXCEPTION 'sent_at column "%" of table % must be a timestamp', sent_at, qualified USING ERRCODE = '42804';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = message_table AND a.attname = key
                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
      RAISE EXCEPTION 'key column "%" of table % does not exist', key, qualified USING ERRCODE = '42703';
    END IF;
    PERFORM causal.run_as_owner(message_table,
      format($q$UPDATE %1$s SET msg_id = pg_catalog.md5('pg_causal ' || pg_catalog.format('%%s', %2$I))::uuid
                 WHERE msg_id IS NULL$q$, qualified, key),
      replica => true);
    PERFORM causal.run_as_owner(message_table,
      format($q$UPDATE %1$s t SET deps = coalesce(t.deps, '{}'), crdb_region = '', epoch = 0,
                       hlc = causal.hlc_from_parts(s.ms, s.n::int, 0)
                  FROM (SELECT msg_id, pg_catalog.floor(pg_catalog.date_part('epoch', %2$I) * 1000)::bigint AS ms,
                               pg_catalog.row_number() OVER (
                                 PARTITION BY pg_catalog.floor(pg_catalog.date_part('epoch', %2$I) * 1000)
                                 ORDER BY msg_id) - 1 AS n
                          FROM %1$s WHERE hlc IS NULL) s
                 WHERE t.msg_id OPERATOR(pg_catalog.=) s.msg_id$q$, qualified, sent_at),
      replica => true);
  ELSIF populated THEN
    IF EXISTS (SELECT FROM causal.regions r WHERE r.region IS DISTINCT FROM this_region) THEN
      RAISE EXCEPTION 'cannot enable % with rows in a mesh without key and sent_at', qualified USING ERRCODE = '55000',
        DETAIL = 'Each region would stamp its copy of a row with an id and a time of its own: every message would exist once per region.',
        HINT = format('Name the column that identifies a message and the one that says when it was sent: causal.enable(%L, %L, key => ..., sent_at => ...). Or enable the table empty and copy the rows in.', qualified, conversation);
    END IF;
    RAISE WARNING 'the rows of % are stamped in region "%" alone', qualified, this_region
      USING DETAIL = 'If another region holds the same rows, each message will exist once per region.',
            HINT = 'There, enable the table empty and let the mesh copy the rows, or enable both with key and sent_at.';
    SELECT r.epoch INTO current_epoch FROM causal.regions r WHERE r.region = this_region;
    PERFORM causal.run_as_owner(message_table,
      format('UPDATE %s SET msg_id = coalesce(msg_id, causal.new_msg_id()), deps = coalesce(deps, ''{}''),
                     hlc = causal.hlc_now(), crdb_region = %L, epoch = %s
               WHERE hlc IS NULL OR msg_id IS NULL OR deps IS NULL', qualified, this_region, coalesce(current_epoch, 0)),
      replica => true);
  END IF;
  -- pg_causal's columns as the shape wants them (extension/table/table_shape.cpp):
  -- NOT NULL where it says, its defaults and no other (a column the table
  -- had before keeps its values).
  PERFORM causal.run_as_owner(message_table,
    format('ALTER TABLE %s ', qualified)
    || (SELECT string_agg(format('ALTER COLUMN %I %s', c.name,
                                 coalesce('SET DEFAULT ' || c.default_sql, 'DROP DEFAULT'))
                          || CASE WHEN c.not_null THEN format(', ALTER COLUMN %I SET NOT NULL', c.name) ELSE '' END,
                          ', ')
          FROM causal.message_columns() c));

  -- msg_id identifies a message in every region: the dedupe key and the
  -- replica identity (a local serial key would differ from region to region).
  msg_id_index := causal.index_on(message_table, ARRAY['msg_id']::name[], true);
  IF msg_id_index IS NULL THEN
    PERFORM causal.run_as_owner(message_table, format('CREATE UNIQUE INDEX ON %s (msg_id)', qualified));
    msg_id_index := causal.index_on(message_table, ARRAY['msg_id']::name[], true);
  END IF;
  IF causal.index_on(message_table, ARRAY[conversation, 'hlc']::name[], false) IS NULL THEN
    BEGIN
      PERFORM causal.run_as_owner(message_table, format('CREATE INDEX ON %s (%I, hlc)', qualified, conversation));
    EXCEPTION WHEN undefined_object THEN
      RAISE EXCEPTION 'conversation column "%" has type %, which a btree cannot index', conversation,
                      (SELECT a.atttypid::regtype FROM pg_attribute a
                        WHERE a.attrelid = message_table AND a.attname = conversation)
        USING ERRCODE = '42804';
    END;
  END IF;
  PERFORM causal.run_as_owner(message_table, format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', qualified,
                 (SELECT relname FROM pg_class WHERE oid = msg_id_index)));

  -- PostgreSQL 15's replication workers, which run as pg_causal's
  -- replication role, check its rights on the table (and find it through
  -- its schema) before any trigger: without them every link would stop.
  -- The sequences the table's defaults draw from, for a row whose sender
  -- lacks the column.
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO causal_replicator',
                 (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = message_table));
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE %s TO causal_replicator', qualified);
  FOR col IN SELECT d.objid::regclass AS sequence FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
              WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = message_table AND d.deptype = 'a' AND s.relkind = 'S' LOOP
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO causal_replicator', col.sequence);
  END LOOP;

  EXECUTE format('CREATE TRIGGER causal_message BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW
                  EXECUTE FUNCTION causal.message_trigger(%L, %L)', qualified, conversation,
                 CASE WHEN notify THEN 'notify' ELSE 'quiet' END);
  -- Counts and notifies once the row is stored: a retry dropped by ON
  -- CONFLICT, or one that fails on the unique index, never was. After a
  -- DELETE, writes the message's tombstone.
  EXECUTE format('CREATE TRIGGER causal_message_stored AFTER INSERT OR DELETE ON %s FOR EACH ROW
                  EXECUTE FUNCTION causal.message_stored(%L, %L)', qualified, conversation,
                 CASE WHEN notify THEN 'notify' ELSE 'quiet' END);
  EXECUTE format('CREATE TRIGGER causal_message_truncate BEFORE TRUNCATE ON %s
                  FOR EACH STATEMENT EXECUTE FUNCTION causal.message_truncate()', qualified);
  -- ALWAYS: the replication apply worker must fire them too
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER causal_message', qualified);
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER causal_message_stored', qualified);
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER causal_message_truncate', qualified);

  PERFORM causal.mesh_publication();

  SELECT * INTO problem FROM causal.message_table_problem(message_table, conversation) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'causal.enable() left % unfit: %', qualified, problem.problem USING ERRCODE = 'XX000';
  END IF;
  RETURN message_table;
END $$;
COMMENT ON FUNCTION causal.enable(regclass, name, boolean, name, name) IS
    'make a table a causal message table: columns, indexes, the triggers, the publications causal_messages and causal_copy';

-- Undoes enable() without touching the data: the triggers go and the table
-- leaves the publication; columns, indexes and rows stay.
CREATE FUNCTION causal.disable(message_table regclass) RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM causal.message_tables() m WHERE m.relid = message_table) THEN
    RAISE EXCEPTION 'table % is not a causal message table', message_table USING ERRCODE = '55000';
  END IF;
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message ON %s', message_table);
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message_stored ON %s', message_table);
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message_truncate ON %s', message_table);
  PERFORM causal.mesh_publication();
  RETURN message_table;
END $$;

-- Turning tables into message tables and back is for causal_admin: enable()
-- runs with pg_causal's rights (it adds to causal_mesh, which a superuser
-- owns) and makes every change to the table as its owner.
REVOKE ALL ON FUNCTION causal.enable(regclass, name, boolean, name, name), causal.disable(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.enable(regclass, name, boolean, name, name), causal.disable(regclass) TO causal_admin;

SELECT pg_catalog.pg_extension_config_dump('causal.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('causal.quarantine_id_seq', '');
