-- pg_causal 0.3.0 to 0.4.0, after the functions: the replication role as
-- pg_causal makes it, the DDL guard's event triggers, and each message
-- table brought into the tenant boundary.
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

-- Every link of the mesh as causal.regions has it (sql/regions.sql).
CREATE VIEW causal.links WITH (security_invoker = true) AS
SELECT f.region AS from_region, t.region AS to_region, causal.link_name(f.region, t.region) AS link
  FROM causal.regions f CROSS JOIN causal.regions t
 WHERE f.region OPERATOR(pg_catalog.<>) t.region;
COMMENT ON VIEW causal.links IS 'each link of the mesh: the subscription in to_region and the slot in from_region';
GRANT SELECT ON causal.links TO PUBLIC;

CREATE TRIGGER removed_regions_register BEFORE INSERT OR UPDATE ON causal.removed_regions
    FOR EACH ROW EXECUTE FUNCTION causal.removed_regions_register();
ALTER TABLE causal.removed_regions ENABLE ALWAYS TRIGGER removed_regions_register;
CREATE TRIGGER region_removed AFTER INSERT OR UPDATE ON causal.removed_regions
    FOR EACH ROW EXECUTE FUNCTION causal.region_removed();
ALTER TABLE causal.removed_regions ENABLE ALWAYS TRIGGER region_removed;
CREATE TRIGGER removed_regions_changed AFTER INSERT OR UPDATE OR DELETE ON causal.removed_regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_changed();
ALTER TABLE causal.removed_regions ENABLE ALWAYS TRIGGER removed_regions_changed;
-- causal_mesh carries the removals (a peer takes them once causalctl init
-- refreshes its links).
SELECT causal.mesh_publication();

-- catch_up reads a conversation's deletions by an index that enable() now
-- makes (sql/enable.sql). Built here, it would hold each message table's
-- SHARE lock, writes stopped, for a scan of the whole table inside ALTER
-- EXTENSION UPDATE: the DBA builds it concurrently instead, and until then
-- catch_up finds them along the (conversation, hlc) index, reading the
-- whole conversation.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT m.relid, m.conversation FROM causal.message_tables() m
            WHERE m.conversation IS NOT NULL AND causal.deletions_index(m.relid, m.conversation) IS NULL LOOP
    RAISE WARNING 'message table % has no index of its deletions: causal.catch_up() reads whole conversations to find them', t.relid
      USING HINT = pg_catalog.format('Build it without stopping writes, in every region: CREATE INDEX CONCURRENTLY ON %s (%I, deleted_at) WHERE deleted_at IS NOT NULL;',
                                     t.relid, t.conversation);
  END LOOP;
END $$;

-- The relay pages a peer's rows along an index that enable() now makes
-- (causal.stamp_index()); for the same reason as above the DBA builds it
-- concurrently, and until then the relay reads such a table from a peer by
-- a scan of the whole table.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT m.relid FROM causal.message_tables() m WHERE causal.stamp_index(m.relid) IS NULL LOOP
    RAISE WARNING 'message table % has no index of its latest stamps: the relay reads it from this region by a scan of the whole table', t.relid
      USING HINT = pg_catalog.format('Build it without stopping writes, in every region: CREATE INDEX CONCURRENTLY ON %s (causal.latest_stamp(hlc, deleted_at, copies), msg_id);',
                                     t.relid);
  END LOOP;
END $$;
