-- Turning a table into a causal message table and back: causal.enable()
-- and causal.disable(), for causal_admin. The tenant policy: enable() takes
-- only a table within the shape (sql/messages.sql), makes every change to it
-- as its owner, and grants the replication role what replication needs.

-- What causal.enable() stamped in this region alone: the rows of a populated
-- table enabled without key and sent_at, up to an hlc (every row of the
-- table's region this region stamped at or below it is one of them). Where
-- two regions did so, each holds each row under a msg_id of its own:
-- causalctl verify looks for such twins among these rows and nowhere else,
-- so that two messages that merely look alike stay two messages.
CREATE TABLE causal.stamped_in_place (
    message_table    regclass NOT NULL,
    region           text NOT NULL,
    stamped_through  causal.hlc NOT NULL,
    PRIMARY KEY (message_table, region)
);
COMMENT ON TABLE causal.stamped_in_place IS 'message tables whose rows causal.enable() stamped in this region without key and sent_at';
GRANT SELECT ON causal.stamped_in_place TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('causal.stamped_in_place', '');

-- Runs one of causal.enable()'s statements as the table's owner, in a
-- security-restricted operation: whatever of the owner's code it fires
-- (a CHECK constraint, an index expression) runs with the owner's rights,
-- not the admin's. Only superusers (and so enable()) may call it.
CREATE FUNCTION causal.run_as_owner(message_table regclass, statement text, replica boolean DEFAULT false)
    RETURNS void AS 'MODULE_PATHNAME', 'run_as_owner' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.run_as_owner(regclass, text, boolean) FROM PUBLIC;

CREATE FUNCTION causal.lock_for_enable(message_table regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'lock_for_enable' LANGUAGE C STRICT;
CREATE FUNCTION causal.unstamped_rows(message_table regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'unstamped_rows' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION causal.lock_for_enable(regclass), causal.unstamped_rows(regclass) FROM PUBLIC;

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
  -- hash of the key and the hlc is the time, by the reserved node 0 (its
  -- logical part from the msg_id), in no region, epoch 0. Without
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
    -- The logical part of the hlc comes from the msg_id alone, never from
    -- the rows beside it: regions that hold different parts of the archive
    -- give each row they share the same hlc. Two rows of one conversation
    -- and one millisecond whose ids hash alike would share one (an hlc names
    -- a message within its conversation): refused, with what to do. The
    -- check's body is passed as a literal, so no name can end it early.
    PERFORM causal.run_as_owner(message_table,
      format($q$UPDATE %1$s SET deps = coalesce(deps, '{}'), crdb_region = '', epoch = 0,
                       hlc = causal.hlc_from_parts(
                               pg_catalog.floor(pg_catalog.date_part('epoch', %2$I) * 1000)::bigint,
                               (('x' OPERATOR(pg_catalog.||) pg_catalog.substr(msg_id::text, 1, 4))::bit(16))::int, 0)
                 WHERE hlc IS NULL$q$, qualified, sent_at),
      replica => true);
    PERFORM causal.run_as_owner(message_table, format('DO %L', format($b$
        DECLARE twins text;
        BEGIN
          SELECT pg_catalog.string_agg(pg_catalog.format('%%s', t.%2$I), ', '
                                       ORDER BY pg_catalog.format('%%s', t.%2$I)) INTO twins
            FROM %1$s t
           WHERE t.crdb_region OPERATOR(pg_catalog.=) '' AND t.epoch OPERATOR(pg_catalog.=) 0
             AND (t.%4$I, t.hlc) IN (SELECT u.%4$I, u.hlc FROM %1$s u
                                     WHERE u.crdb_region OPERATOR(pg_catalog.=) '' AND u.epoch OPERATOR(pg_catalog.=) 0
                                     GROUP BY u.%4$I, u.hlc HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1);
          IF twins IS NOT NULL THEN
            RAISE EXCEPTION 'rows of %% with %% %% were sent in one millisecond and would share an hlc', %1$L, %2$L, twins
              USING ERRCODE = '23505',
                    HINT = pg_catalog.format('Move one of them a millisecond on (UPDATE ... SET %%1$I = %%1$I + interval ''1 ms'') in every region that holds it, then enable again.', %3$L);
          END IF;
        END $b$, qualified, key, sent_at, conversation)),
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
    INSERT INTO causal.stamped_in_place (message_table, region, stamped_through)
    VALUES (message_table, this_region, causal.hlc_now())
    ON CONFLICT ON CONSTRAINT stamped_in_place_pkey DO UPDATE SET stamped_through = EXCLUDED.stamped_through;
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
  -- The deletions of a conversation since a cursor (causal.catch_up): few
  -- rows, and no insert but a DELETE's tombstone writes to it.
  IF causal.deletions_index(message_table, conversation) IS NULL THEN
    PERFORM causal.run_as_owner(message_table,
      format('CREATE INDEX ON %s (%I, deleted_at) WHERE deleted_at IS NOT NULL', qualified, conversation));
  END IF;
  -- What the relay reads of a peer: the rows stamped since a point, in
  -- pages along their latest stamp, whatever the table's size.
  IF causal.stamp_index(message_table) IS NULL THEN
    PERFORM causal.run_as_owner(message_table,
      format('CREATE INDEX ON %s (causal.latest_stamp(hlc, deleted_at, copies), msg_id)', qualified));
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
  DELETE FROM causal.stamped_in_place s WHERE s.message_table = disable.message_table;
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
