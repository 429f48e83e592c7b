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
-- No statement runs as it but pg_causal's own (extension/mesh/replication_role.cpp):
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
-- owner (extension/mesh/replication_role.cpp).
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
GRANT SELECT, INSERT, UPDATE ON causal.regions, causal.fences, causal.removed_regions, causal.heartbeats
    TO causal_replicator;
GRANT INSERT ON causal.quarantine TO causal_replicator;
GRANT USAGE ON SEQUENCE causal.quarantine_id_seq TO causal_replicator;
SELECT causal.mend_replication_role();

-- Where a pull along the stamps stopped (extension/mesh/relay.cpp): a
-- backlog crosses in pulls of a few pages, each committed here with its
-- rows, so that a killed relay goes on where its last pull ended rather than
-- from the start. Per unheard region: the region pulled through (another
-- one means another snapshot, and the pull starts over), the heartbeat that
-- region held at the first pull (stored once the last ends: every row of
-- that snapshot is here then, as keys only grow and rows never go), and the
-- table and row the next pull starts after (tables go in oid order). This
-- region's own bookkeeping: not replicated, not dumped.
CREATE TABLE causal.relay_progress (
    peer           text PRIMARY KEY,
    source         text NOT NULL,
    beat           bigint,
    stable         causal.hlc,
    message_table  oid NOT NULL,
    after_stamp    causal.hlc,
    after_msg_id   uuid
);
COMMENT ON TABLE causal.relay_progress IS 'where the relay''s pull of an unheard region''s messages stopped';
GRANT SELECT, INSERT, UPDATE, DELETE ON causal.relay_progress TO causal_replicator;

-- Pulls asked of the relay (causalctl reseed): a peer's own rows, from the
-- peer, since this region's stable point for it when asked (`since`; NULL:
-- all of them), taken before the links are made again, whose stream then
-- moves that point on. The relay deletes the row once the pull is done.
-- This region's own bookkeeping: not replicated, not dumped.
CREATE TABLE causal.pull_requests (
    peer          text PRIMARY KEY,
    since         causal.hlc,
    requested_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE causal.pull_requests IS 'pulls of a peer''s own rows asked of this region''s relay';
GRANT SELECT, DELETE ON causal.pull_requests TO causal_replicator;

-- Fences whose region's tombstones this region may hold with a deletion
-- that deletes nothing (causal.fences_register adds one as a fence lands
-- or arrives): the relay looks for them, notes them in
-- causal.fenced_deletions, and deletes the row. This region's own
-- bookkeeping: not replicated, not dumped.
CREATE TABLE causal.fence_scans (
    region  text NOT NULL,
    epoch   bigint NOT NULL,
    since   causal.hlc NOT NULL,
    PRIMARY KEY (region, epoch)
);
COMMENT ON TABLE causal.fence_scans IS 'fences whose region''s tombstones the relay has yet to look for here';
GRANT SELECT, DELETE ON causal.fence_scans TO causal_replicator;
GRANT SELECT, INSERT, UPDATE ON causal.fenced_deletions TO causal_replicator;

CREATE FUNCTION causal.request_pull(peer text) RETURNS void
    AS 'MODULE_PATHNAME', 'request_pull' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.request_pull(text) IS
    'asks this region''s relay for the peer''s own rows, from the peer, since this region''s stable point for it';
REVOKE ALL ON FUNCTION causal.request_pull(text) FROM PUBLIC;

-- What the relay (extension/mesh/relay.cpp) did since the server started:
-- pulls from a heard peer of what it holds of unheard ones, those that
-- failed, the rows and pages they stored and the seconds they took. For
-- the monitoring queries (monitoring/pg_causal-queries.yaml).
CREATE FUNCTION causal.relay_stats(OUT pulls bigint, OUT failed_pulls bigint, OUT rows bigint, OUT pages bigint,
                                   OUT seconds double precision, OUT last_pull_at timestamptz)
    RETURNS record AS 'MODULE_PATHNAME', 'relay_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.relay_stats() IS
    'what the relay pulled since the server started: pulls, failed pulls, rows, pages, seconds';
