-- pg_causal 0.2.0 to 0.3.0 (ALTER EXTENSION pg_causal UPDATE). Frozen: a
-- later version gets a script of its own.
\echo Use "ALTER EXTENSION pg_causal UPDATE TO '0.3.0'" to load this file. \quit

-- What a query over hlc values finds by name moves to pg_catalog, where the
-- built-in types' operators are: it then works with any search_path. The
-- operator classes and every index keep the same operators (by OID).
ALTER OPERATOR causal.= (causal.hlc, causal.hlc) SET SCHEMA pg_catalog;
ALTER OPERATOR causal.<> (causal.hlc, causal.hlc) SET SCHEMA pg_catalog;
ALTER OPERATOR causal.< (causal.hlc, causal.hlc) SET SCHEMA pg_catalog;
ALTER OPERATOR causal.<= (causal.hlc, causal.hlc) SET SCHEMA pg_catalog;
ALTER OPERATOR causal.> (causal.hlc, causal.hlc) SET SCHEMA pg_catalog;
ALTER OPERATOR causal.>= (causal.hlc, causal.hlc) SET SCHEMA pg_catalog;
ALTER AGGREGATE causal.min(causal.hlc) SET SCHEMA pg_catalog;
ALTER AGGREGATE causal.max(causal.hlc) SET SCHEMA pg_catalog;

-- The functions that named them, and those of the publications of one's own
-- writes (written_by, causal_messages, causal_copy).
CREATE OR REPLACE FUNCTION causal.regions_register() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  current causal.regions;
BEGIN
  -- The register's order: epoch, then fenced over active (a fence and an
  -- unfence racing to one epoch end fenced everywhere), then changed_at.
  IF TG_OP = 'UPDATE' THEN
    IF NEW.epoch > OLD.epoch
       OR (NEW.epoch = OLD.epoch AND NEW.state = 'fenced' AND OLD.state = 'active')
       OR (NEW.epoch = OLD.epoch AND NEW.state = OLD.state
           AND NEW.changed_at OPERATOR(pg_catalog.>) OLD.changed_at) THEN
      RETURN NEW;
    END IF;
    RETURN NULL;  -- older than what is here: keep what is here
  END IF;
  -- A region's first row can arrive by several paths at once: one at a time.
  PERFORM pg_advisory_xact_lock(hashtext('causal.regions'), hashtext(NEW.region));
  SELECT * INTO current FROM causal.regions r WHERE r.region = NEW.region FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NEW;
  END IF;
  -- The same region registered elsewhere too: one row, the larger value.
  UPDATE causal.regions r
     SET node_id = NEW.node_id, epoch = NEW.epoch, state = NEW.state,
         fenced_at = NEW.fenced_at, changed_at = NEW.changed_at
   WHERE r.region = NEW.region;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION causal.fences_register() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  earlier_fence bool;
  earlier_lift bool;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- Fenced, or lifted, from two places at once: the earlier time holds
    -- everywhere. Each field is its own register.
    earlier_fence := NEW.fenced_at OPERATOR(pg_catalog.<) OLD.fenced_at;
    earlier_lift := NEW.lifted_at IS NOT NULL
                    AND (OLD.lifted_at IS NULL OR NEW.lifted_at OPERATOR(pg_catalog.<) OLD.lifted_at);
    IF NOT earlier_fence AND NOT earlier_lift THEN
      RETURN NULL;
    END IF;
    IF NOT earlier_fence THEN NEW.fenced_at := OLD.fenced_at; END IF;
    IF NOT earlier_lift THEN NEW.lifted_at := OLD.lifted_at; END IF;
    RETURN NEW;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('causal.fences'), hashtext(NEW.region));
  IF NOT EXISTS (SELECT FROM causal.fences f WHERE f.region = NEW.region AND f.epoch = NEW.epoch) THEN
    RETURN NEW;
  END IF;
  UPDATE causal.fences f SET fenced_at = NEW.fenced_at, lifted_at = NEW.lifted_at
   WHERE f.region = NEW.region AND f.epoch = NEW.epoch;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION causal.is_orphan(region text, epoch bigint, hlc causal.hlc) RETURNS bool
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM causal.fences f
                  WHERE f.region = $1 AND f.epoch = $2 AND $3 OPERATOR(pg_catalog.>) f.fenced_at)
$$;

CREATE OR REPLACE FUNCTION causal.stable_hlc() RETURNS causal.hlc
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN EXISTS (SELECT FROM causal.regions r
                             LEFT JOIN causal.heartbeats h ON h.region = r.region
                            WHERE r.region IS DISTINCT FROM current_setting('causal.region', true)
                              AND h.stable IS NULL)
              THEN causal.hlc_from_parts(0, 0, 0)  -- a peer not heard from yet: nothing is stable
              ELSE least(causal.local_stable(),
                         (SELECT pg_catalog.min(h.stable) FROM causal.regions r
                            JOIN causal.heartbeats h ON h.region = r.region
                           WHERE r.region IS DISTINCT FROM current_setting('causal.region', true)))
         END
$$;

CREATE OR REPLACE FUNCTION causal.message_columns(OUT name text, OUT type regtype, OUT definition text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  VALUES ('msg_id', 'uuid'::regtype, 'uuid NOT NULL DEFAULT causal.new_msg_id()'),
         ('hlc', 'causal.hlc'::regtype, 'causal.hlc'),
         ('deps', 'causal.hlc[]'::regtype, 'causal.hlc[] NOT NULL DEFAULT ''{}'''),
         ('crdb_region', 'text'::regtype, 'text'),
         ('epoch', 'bigint'::regtype, 'bigint'),
         ('deleted_at', 'causal.hlc'::regtype, 'causal.hlc'),
         ('copies', 'causal.copy[]'::regtype, 'causal.copy[] NOT NULL DEFAULT ''{}'''),
         -- the region whose DELETE made a tombstone (whose crdb_region is
         -- the message's); NULL on every other row, which its crdb_region's
         -- region wrote. A region publishes the rows it wrote,
         -- coalesce(written_by, crdb_region) (causal_messages); the apply
         -- path keeps the column as it comes.
         ('written_by', 'text'::regtype, 'text')
$$;

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

DROP FUNCTION causal.mesh_publication();
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

CREATE OR REPLACE FUNCTION causal.enable(
    message_table regclass,
    conversation name,
    notify boolean DEFAULT false,
    key name DEFAULT NULL,
    sent_at name DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
  rel pg_class;
  qualified text;
  column_type regtype;
  col record;
  msg_id_index regclass;
  this_region text := causal.gateway_region();
  current_epoch bigint;
  problem record;
  populated boolean;
  added_msg_id boolean := false;
BEGIN
  IF message_table IS NULL OR conversation IS NULL THEN
    RAISE EXCEPTION 'causal.enable() needs a table and its conversation column' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO rel FROM pg_class WHERE oid = message_table;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'relation with OID % does not exist', message_table::oid USING ERRCODE = '42P01';
  END IF;
  qualified := message_table::text;
  IF rel.relkind = 'p' THEN
    RAISE EXCEPTION 'cannot enable partitioned table %', qualified USING ERRCODE = '0A000',
      DETAIL = 'Causal message tables are plain tables in this version.';
  ELSIF rel.relkind <> 'r' THEN
    RAISE EXCEPTION '"%" is not a table', qualified USING ERRCODE = '42809';
  END IF;
  -- SECURITY DEFINER: the caller (causal_admin) gets pg_causal's changes to
  -- a table, never a system catalog's or pg_causal's own.
  IF rel.oid < 16384 OR rel.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                             'pg_toast'::regnamespace, 'causal'::regnamespace) THEN
    RAISE EXCEPTION 'cannot enable %: it belongs to the system or to pg_causal', qualified USING ERRCODE = '42501';
  END IF;
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
      added_msg_id := added_msg_id OR col.name = 'msg_id';
    ELSIF column_type <> col.type THEN
      RAISE EXCEPTION 'column "%" of table % has type %, not %', col.name, qualified, column_type, col.type
        USING ERRCODE = '42804';
    END IF;
  END LOOP;

  -- Rows from before. Every region that holds them must stamp them alike,
  -- or each message would exist once per region: with `key` (a column that
  -- identifies a message) and `sent_at` (when it was sent), the msg_id is a
  -- hash of the key and the hlc is the time, by the reserved node 0 (ties
  -- in one millisecond numbered by msg_id), in no region, epoch 0. Without
  -- them, rows are stamped now, in this region: only where no other region
  -- is registered.
  EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE hlc IS NULL OR msg_id IS NULL OR deps IS NULL)', qualified)
    INTO populated;
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
  IF added_msg_id THEN
    PERFORM causal.run_as_owner(message_table,
      format('ALTER TABLE %s ALTER COLUMN msg_id SET DEFAULT causal.new_msg_id()', qualified));
  END IF;
  PERFORM causal.run_as_owner(message_table,
    format('ALTER TABLE %s ALTER COLUMN msg_id SET NOT NULL, ALTER COLUMN hlc SET NOT NULL,
            ALTER COLUMN deps SET NOT NULL, ALTER COLUMN crdb_region SET NOT NULL,
            ALTER COLUMN epoch SET NOT NULL', qualified));

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

CREATE OR REPLACE FUNCTION causal.disable(message_table regclass) RETURNS regclass
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

-- Where the clients of `region` go while it is fenced: the first active
-- region other than it, by name in byte order (the same answer in every
-- region that sees the same states). The rule lives in the library
-- (extension/regions.cpp), which also gives it in the 5C001 HINT a fenced
-- region's writers get; causalctl failover's advice asks here.
CREATE FUNCTION causal.region_for_clients(region text) RETURNS text
    AS 'MODULE_PATHNAME', 'region_for_clients' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION causal.region_for_clients(text) IS
    'the active region the clients of a fenced region are sent to';

-- A fence that landed in one region, carried to this one as replication
-- would carry it: the region's row and its fences' rows, as that region
-- holds them, through the same registers (which keep the larger epoch and
-- the earlier times). causalctl failover carries a fence to every region it
-- reaches, so that the survivors refuse the fenced region's clients at
-- once, and a failover whose fence could not reach every survivor can be
-- finished by running it again. Only a fenced state is carried.
CREATE FUNCTION causal.carry_fence(region_row jsonb, fence_rows jsonb) RETURNS causal.regions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  carried causal.regions := jsonb_populate_record(NULL::causal.regions, region_row);
  result causal.regions;
BEGIN
  IF carried.region IS NULL OR carried.state IS DISTINCT FROM 'fenced' OR carried.changed_at IS NULL THEN
    RAISE EXCEPTION 'carry_fence carries a fenced region''s row' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT FROM jsonb_populate_recordset(NULL::causal.fences, coalesce(fence_rows, '[]')) f
              WHERE f.region IS DISTINCT FROM carried.region OR f.epoch IS NULL OR f.fenced_at IS NULL)
     OR NOT EXISTS (SELECT FROM jsonb_populate_recordset(NULL::causal.fences, coalesce(fence_rows, '[]')) f
                     WHERE f.epoch < carried.epoch AND f.fenced_at OPERATOR(pg_catalog.=) carried.fenced_at) THEN
    RAISE EXCEPTION 'carry_fence carries the fences of the region it carries, the current one included'
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO causal.fences SELECT * FROM jsonb_populate_recordset(NULL::causal.fences, coalesce(fence_rows, '[]'));
  INSERT INTO causal.regions SELECT carried.*;
  SELECT * INTO result FROM causal.regions r WHERE r.region = carried.region;
  RETURN result;
END $$;
REVOKE ALL ON FUNCTION causal.carry_fence(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.carry_fence(jsonb, jsonb) TO causal_admin;

-- The last error of each subscription's replication worker since the server
-- started (extension/link_errors.cpp): the text PostgreSQL 15 keeps only in
-- the log, for causalctl status. It may quote row values: causal_admin and
-- pg_monitor read it.
CREATE FUNCTION causal.link_errors(OUT subscription oid, OUT failed_at timestamptz, OUT table_sync boolean,
                                   OUT sqlstate text, OUT message text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'link_errors' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.link_errors() IS
    'the last error of each subscription''s apply or table sync worker since the server started';
REVOKE ALL ON FUNCTION causal.link_errors() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.link_errors() TO causal_admin, pg_monitor;

-- causalctl remove: a region leaves the mesh for good. Its row goes from
-- causal.regions (the majority is counted over the rest), with its
-- heartbeat and the votes to fence it; its fences stay, so that what it
-- wrote in a fenced epoch stays an orphan everywhere. Not replicated
-- (causal_mesh publishes no DELETE): causalctl runs it in every region.
CREATE FUNCTION causal.unregister_region(region text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF region IS NULL THEN
    RAISE EXCEPTION 'region must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF region = current_setting('causal.region', true) THEN
    RAISE EXCEPTION 'region "%" is this region: a region does not remove itself', region USING ERRCODE = '55000',
      HINT = 'Remove it from the other regions (causalctl remove).';
  END IF;
  IF EXISTS (SELECT FROM causal.regions r WHERE r.region = unregister_region.region AND r.state = 'active') THEN
    RAISE EXCEPTION 'region "%" is active', region USING ERRCODE = '55000',
      HINT = 'Fence it first (causalctl failover): its clients must stop writing where the mesh no longer reads.';
  END IF;
  DELETE FROM causal.heartbeats h WHERE h.region = unregister_region.region;
  DELETE FROM causal.fence_votes v WHERE v.target = unregister_region.region;
  DELETE FROM causal.regions r WHERE r.region = unregister_region.region;
  RETURN FOUND;
END $$;
REVOKE ALL ON FUNCTION causal.unregister_region(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.unregister_region(text) TO causal_admin;

-- Every message table gets written_by (enable() adds what is missing and
-- changes nothing else), and the publications become the three of 0.3.0.
-- The peers' subscriptions take causal_mesh alone until `causalctl init`
-- moves them to all three, so causal_mesh keeps carrying the message tables
-- until then (init takes them out): run it once every region is updated.
SELECT causal.mesh_publication(true);
SELECT causal.enable(m.relid, m.conversation, m.notify) FROM causal.message_tables() m;
