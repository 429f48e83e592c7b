-- pg_causal 0.3.0 to 0.4.0 (ALTER EXTENSION pg_causal UPDATE). Frozen: a
-- later version gets a script of its own.
--
-- One tenant boundary: a message table has a shape pg_causal states in one
-- place (extension/table_shape.cpp), its stores go below SQL as the table's
-- owner, and replication runs as causal_replicator, no superuser.
\echo Use "ALTER EXTENSION pg_causal UPDATE TO '0.4.0'" to load this file. \quit

-- pg_causal's triggers on its own tables run their statements as its
-- owner: the replication workers run none as the replication role.
CREATE OR REPLACE FUNCTION causal.regions_register() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  current causal.regions;
BEGIN
  -- SECURITY DEFINER, so that it runs its statements in the replication
  -- workers too (they run none as the replication role): for its own
  -- table's trigger alone.
  IF TG_RELID OPERATOR(pg_catalog.<>) 'causal.regions'::regclass THEN
    RAISE EXCEPTION 'causal.regions_register() is causal.regions''s trigger' USING ERRCODE = '39P01';
  END IF;
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
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  earlier_fence bool;
  earlier_lift bool;
BEGIN
  -- SECURITY DEFINER, so that it runs its statements in the replication
  -- workers too (they run none as the replication role): for its own
  -- table's trigger alone.
  IF TG_RELID OPERATOR(pg_catalog.<>) 'causal.fences'::regclass THEN
    RAISE EXCEPTION 'causal.fences_register() is causal.fences''s trigger' USING ERRCODE = '39P01';
  END IF;
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

CREATE OR REPLACE FUNCTION causal.heartbeats_register() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- SECURITY DEFINER, so that it runs its statements in the replication
  -- workers too (they run none as the replication role): for its own
  -- table's trigger alone.
  IF TG_RELID OPERATOR(pg_catalog.<>) 'causal.heartbeats'::regclass THEN
    RAISE EXCEPTION 'causal.heartbeats_register() is causal.heartbeats''s trigger' USING ERRCODE = '39P01';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF NEW.beat > OLD.beat THEN RETURN NEW; END IF;
    RETURN NULL;
  END IF;
  -- A first beat arrives by several paths at once (direct and relayed):
  -- one at a time, or two inserts would collide and stop an apply worker.
  PERFORM pg_advisory_xact_lock(hashtext('causal.heartbeats'), hashtext(NEW.region));
  IF NOT EXISTS (SELECT FROM causal.heartbeats h WHERE h.region = NEW.region) THEN
    RETURN NEW;
  END IF;
  UPDATE causal.heartbeats h SET beat = NEW.beat, stable = NEW.stable WHERE h.region = NEW.region;
  RETURN NULL;
END $$;

-- The shape of a message table, now C (extension/table_shape.cpp).
DROP FUNCTION causal.message_columns();
-- pg_causal's columns of a message table, as enable() adds them: the list
-- is extension/table_shape.cpp's, which the triggers and the shape check
-- read too. not_null: NOT NULL once enable() has stamped the rows;
-- default_sql: the one default the column may have (NULL: none).
CREATE FUNCTION causal.message_columns(OUT name text, OUT type regtype, OUT definition text, OUT not_null boolean,
                                       OUT default_sql text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'message_columns' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION causal.unfit_table(relation regclass, OUT sqlstate text, OUT problem text, OUT hint text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'unfit_table' LANGUAGE C STABLE;

CREATE OR REPLACE FUNCTION causal.message_table_problem(message_table regclass, conversation name,
                                             OUT sqlstate text, OUT problem text, OUT hint text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'message_table_problem' LANGUAGE C STABLE;

DROP FUNCTION causal.code_before_trigger(regclass);
CREATE FUNCTION causal.lock_for_enable(message_table regclass) RETURNS void
    AS 'MODULE_PATHNAME', 'lock_for_enable' LANGUAGE C STRICT;

CREATE FUNCTION causal.unstamped_rows(message_table regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'unstamped_rows' LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION causal.lock_for_enable(regclass), causal.unstamped_rows(regclass) FROM PUBLIC;
CREATE OR REPLACE FUNCTION causal.enable(
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
  -- pg_causal's columns as the shape wants them (extension/table_shape.cpp):
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

-- The last error of each link: no row's values.
DROP FUNCTION causal.link_errors();
-- The last error of each subscription's replication worker since the server
-- started (extension/link_errors.cpp), which PostgreSQL 15 keeps only in
-- the log, for causalctl status: its SQLSTATE, its message as PostgreSQL
-- wrote it before any value went in (a row's values are not kept), and the
-- objects it names. For causal_admin and pg_monitor.
CREATE FUNCTION causal.link_errors(OUT subscription oid, OUT failed_at timestamptz, OUT table_sync boolean,
                                   OUT sqlstate text, OUT message text, OUT object text)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'link_errors' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.link_errors() IS
    'the last error of each subscription''s apply or table sync worker since the server started';
REVOKE ALL ON FUNCTION causal.link_errors() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.link_errors() TO causal_admin, pg_monitor;

-- The replication role: who pg_causal's replication processes run as.
--
-- PostgreSQL 15's apply and table sync workers run as their subscription's
-- owner, and fill in defaults, check constraints and build index entries
-- as that role before any trigger fires; pg_causal's relay worker writes
-- the rows it pulls. Owned by a superuser, a table owner's code that slipped
-- in there would run as one. So every subscription of the mesh belongs to
-- causal_replicator, which may do what replication needs and nothing else:
--  * LOGIN (PostgreSQL starts the workers as a session of that role), no
--    password: nobody logs in as it;
--  * BYPASSRLS: PostgreSQL 15's apply worker stops on a table with
--    row-level security unless its role bypasses it, which would stop every
--    table of the link for one tenant's policy;
--  * SELECT, INSERT and UPDATE on pg_causal's replicated tables and on each
--    message table, USAGE on their schemas and on the sequences their
--    defaults draw from (causal.enable() grants these, the DDL guard keeps
--    them), INSERT on the quarantine;
--  * no superuser, no CREATEROLE, CREATEDB or REPLICATION, member of no
--    role and with no members (causal.mend_replication_role()).
-- No statement runs as it but pg_causal's own (extension/replication_role.cpp):
-- a table owner's function that PostgreSQL's apply worker calls as it (a
-- default of a table made before 0.4.0, say) cannot run SQL.
--
-- PostgreSQL 15 wants a superuser to create a subscription and to give it
-- to a new owner, and that owner to be a superuser at that moment: the
-- role is one for the length of a transaction that nobody else sees
-- (causal.adopt_links()).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'causal_replicator') THEN
    CREATE ROLE causal_replicator LOGIN NOINHERIT BYPASSRLS;
  END IF;
END $$;
COMMENT ON ROLE causal_replicator IS 'owns pg_causal''s subscriptions; runs its replication workers and relay';

-- What makes the role more than pg_causal made it, or NULL. For causalctl
-- status and init, which mend it.
CREATE FUNCTION causal.replication_role_problem() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN r.oid IS NULL THEN 'the role causal_replicator does not exist'
    WHEN r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication THEN
      'causal_replicator has SUPERUSER, CREATEROLE, CREATEDB or REPLICATION'
    WHEN NOT r.rolcanlogin OR NOT r.rolbypassrls THEN 'causal_replicator lacks LOGIN or BYPASSRLS'
    WHEN EXISTS (SELECT FROM pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid) THEN
      'causal_replicator is a member of another role'
    WHEN EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid OPERATOR(pg_catalog.=) r.oid) THEN
      'another role is a member of causal_replicator'
    WHEN EXISTS (SELECT FROM pg_db_role_setting s WHERE s.setrole OPERATOR(pg_catalog.=) r.oid) THEN
      'causal_replicator has settings of its own (ALTER ROLE ... SET), which its workers would run with'
  END
  FROM (SELECT) dual LEFT JOIN pg_roles r ON r.rolname OPERATOR(pg_catalog.=) 'causal_replicator'
$$;

-- Makes the role what pg_causal makes it again: a role of the cluster,
-- which a superuser or a CREATEROLE role may have changed (its attributes,
-- its password, its settings, its memberships).
CREATE FUNCTION causal.mend_replication_role() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  grant_row record;
  database name;
  was text := causal.replication_role_problem();
BEGIN
  IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
    RAISE EXCEPTION 'causal.mend_replication_role() needs a superuser' USING ERRCODE = '42501';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'causal_replicator') THEN
    CREATE ROLE causal_replicator LOGIN NOINHERIT BYPASSRLS;
  END IF;
  ALTER ROLE causal_replicator NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT LOGIN BYPASSRLS
    PASSWORD NULL CONNECTION LIMIT -1 VALID UNTIL 'infinity';
  ALTER ROLE causal_replicator RESET ALL;
  FOR database IN SELECT d.datname FROM pg_db_role_setting s JOIN pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase
                   WHERE s.setrole OPERATOR(pg_catalog.=) 'causal_replicator'::regrole LOOP
    EXECUTE format('ALTER ROLE causal_replicator IN DATABASE %I RESET ALL', database);
  END LOOP;
  FOR grant_row IN SELECT m.roleid::regrole AS role, m.member::regrole AS member FROM pg_auth_members m
                    WHERE m.member OPERATOR(pg_catalog.=) 'causal_replicator'::regrole
                       OR m.roleid OPERATOR(pg_catalog.=) 'causal_replicator'::regrole LOOP
    EXECUTE format('REVOKE %s FROM %s', grant_row.role, grant_row.member);
  END LOOP;
  RETURN was IS NOT NULL;
END $$;
REVOKE ALL ON FUNCTION causal.mend_replication_role() FROM PUBLIC;

-- Gives every subscription of the mesh in this database (one that takes a
-- publication of pg_causal's) to causal_replicator, as PostgreSQL 15 allows
-- it: the role a superuser for this transaction alone. Returns the names
-- of those it gave. A running worker keeps its role until it restarts:
-- the liveness worker restarts one whose role is not its subscription's
-- owner (extension/replication_role.cpp).
CREATE FUNCTION causal.adopt_links() RETURNS SETOF name
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  link name;
BEGIN
  IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
    RAISE EXCEPTION 'causal.adopt_links() needs a superuser' USING ERRCODE = '42501',
      HINT = 'PostgreSQL 15 lets only a superuser give a subscription to another owner.';
  END IF;
  PERFORM causal.mend_replication_role();
  FOR link IN SELECT s.subname FROM pg_subscription s
               WHERE s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_database d
                                                       WHERE d.datname OPERATOR(pg_catalog.=) current_database())
                 AND s.subpublications OPERATOR(pg_catalog.&&) ARRAY['causal_mesh', 'causal_messages', 'causal_copy']
                 AND s.subowner OPERATOR(pg_catalog.<>) 'causal_replicator'::regrole
               ORDER BY s.subname LOOP
    ALTER ROLE causal_replicator SUPERUSER;
    EXECUTE format('ALTER SUBSCRIPTION %I OWNER TO causal_replicator', link);
    ALTER ROLE causal_replicator NOSUPERUSER;
    RETURN NEXT link;
  END LOOP;
END $$;
REVOKE ALL ON FUNCTION causal.adopt_links() FROM PUBLIC;

-- What replication writes of pg_causal's own.
GRANT SELECT, INSERT, UPDATE ON causal.regions, causal.fences, causal.heartbeats TO causal_replicator;
GRANT INSERT ON causal.quarantine TO causal_replicator;
GRANT USAGE ON SEQUENCE causal.quarantine_id_seq TO causal_replicator;
SELECT causal.mend_replication_role();

-- The DDL guard judges what a command touched, GRANT and REVOKE too, and
-- what a DROP removes, noted at its start.
DROP EVENT TRIGGER causal_guard_drop_extension;
DROP EVENT TRIGGER causal_guard_ddl;
CREATE EVENT TRIGGER causal_guard_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
                 'CREATE INDEX', 'DROP INDEX', 'ALTER INDEX', 'CREATE RULE', 'ALTER RULE', 'DROP RULE',
                 'GRANT', 'REVOKE', 'ALTER SEQUENCE')
    EXECUTE FUNCTION causal.guard_ddl();
CREATE EVENT TRIGGER causal_guard_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
                 'CREATE INDEX', 'DROP INDEX', 'ALTER INDEX', 'CREATE RULE', 'ALTER RULE', 'DROP RULE',
                 'GRANT', 'REVOKE', 'ALTER SEQUENCE')
    EXECUTE FUNCTION causal.guard_ddl();
-- Every command that drops objects: a column also goes with what it
-- depends on (DROP COLLATION ... CASCADE, DROP EXTENSION ... CASCADE).
CREATE EVENT TRIGGER causal_guard_ddl_drop ON sql_drop
    EXECUTE FUNCTION causal.guard_ddl();
-- Also with session_replication_role = replica: pg_causal stores replicated
-- rows, and stamps the rows from before enable(), as the table's owner in
-- that mode, and the owner's code (a CHECK constraint) could make DDL then.
ALTER EVENT TRIGGER causal_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER causal_guard_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER causal_guard_ddl_drop ENABLE ALWAYS;

-- Every message table: pg_causal's columns with the defaults the shape
-- wants (a table enabled with a msg_id of its own kept its default), and
-- the replication role's rights, as enable() gives them now. A table that
-- is outside the shape anyway is named: its rows are stored as its owner
-- from now on, never by PostgreSQL's worker itself, and its owner's
-- changes to it are refused until a superuser brings it back in.
DO $$
DECLARE
  m record;
  changes text;
  sequence regclass;
BEGIN
  FOR m IN SELECT t.relid, n.nspname FROM causal.message_tables() t
             JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace LOOP
    SELECT string_agg(format('ALTER COLUMN %I %s', c.name, coalesce('SET DEFAULT ' || c.default_sql, 'DROP DEFAULT')),
                      ', ')
      INTO changes FROM causal.message_columns() c
     WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) m.relid
                      AND a.attname OPERATOR(pg_catalog.=) c.name AND NOT a.attisdropped AND a.attgenerated = ''
                      AND a.attidentity = '');
    IF changes IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %s ', m.relid) || changes;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO causal_replicator', m.nspname);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE %s TO causal_replicator', m.relid);
    FOR sequence IN SELECT d.objid::regclass FROM pg_catalog.pg_depend d
                      JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid
                     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
                       AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
                       AND d.refobjid OPERATOR(pg_catalog.=) m.relid AND d.deptype OPERATOR(pg_catalog.=) 'a'
                       AND s.relkind OPERATOR(pg_catalog.=) 'S' LOOP
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO causal_replicator', sequence);
    END LOOP;
  END LOOP;
  -- PostgreSQL 15 records every GRANT of an extension's script as the
  -- extension's initial privileges, also on objects that are not its own
  -- (a row of its own, or folded into initdb's, as for schema public), and
  -- pg_dump then leaves them out: these grants are the tables' own, to dump.
  CREATE TEMPORARY TABLE granted ON COMMIT DROP AS
  SELECT 'pg_catalog.pg_class'::regclass AS classoid, t.relid::oid AS objoid FROM causal.message_tables() t
  UNION SELECT 'pg_catalog.pg_class'::regclass, d.objid FROM pg_catalog.pg_depend d
         WHERE d.refobjid IN (SELECT t.relid FROM causal.message_tables() t) AND d.deptype OPERATOR(pg_catalog.=) 'a'
  UNION SELECT 'pg_catalog.pg_namespace'::regclass, c.relnamespace FROM pg_catalog.pg_class c
         WHERE c.oid IN (SELECT t.relid FROM causal.message_tables() t);
  DELETE FROM granted g WHERE EXISTS (SELECT FROM pg_catalog.pg_depend e
                                       WHERE e.classid OPERATOR(pg_catalog.=) g.classoid
                                         AND e.objid OPERATOR(pg_catalog.=) g.objoid
                                         AND e.deptype OPERATOR(pg_catalog.=) 'e');
  DELETE FROM pg_catalog.pg_init_privs i USING granted g
   WHERE i.classoid OPERATOR(pg_catalog.=) g.classoid AND i.objoid OPERATOR(pg_catalog.=) g.objoid
     AND i.privtype OPERATOR(pg_catalog.=) 'e';
  UPDATE pg_catalog.pg_init_privs i
     SET initprivs = ARRAY(SELECT a FROM pg_catalog.unnest(i.initprivs) a
                            WHERE NOT EXISTS (SELECT FROM pg_catalog.aclexplode(ARRAY[a]) e
                                               WHERE e.grantee OPERATOR(pg_catalog.=) 'causal_replicator'::regrole))
    FROM granted g
   WHERE i.classoid OPERATOR(pg_catalog.=) g.classoid AND i.objoid OPERATOR(pg_catalog.=) g.objoid;
  DROP TABLE granted;
  FOR m IN SELECT t.relid, t.problem FROM causal.message_tables() t WHERE t.problem IS NOT NULL LOOP
    RAISE WARNING 'causal message table % is outside the shape of a message table: %', m.relid, m.problem
      USING HINT = 'Its rows are stored as its owner, and its owner''s changes to it are refused, until a superuser '
                   'changes it back (causal.message_table_problem() says what) and runs causal.enable() on it again.';
  END LOOP;
END $$;

-- The links of this region to causal_replicator; the liveness worker
-- restarts their workers, which keep running as the former owner until then.
SELECT pg_catalog.count(*) FROM causal.adopt_links();
