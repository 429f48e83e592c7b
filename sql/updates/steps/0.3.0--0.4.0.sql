-- pg_causal 0.3.0 to 0.4.0, the schema: one tenant boundary. A message
-- table has a shape pg_causal states in one place (the allow-list,
-- extension/table/table_shape.cpp), its stores go below SQL as the table's
-- owner, and replication runs as causal_replicator, no superuser.
--
-- What goes or changes its result before the functions are made again.
DROP FUNCTION causal.message_columns();
DROP FUNCTION causal.code_before_trigger(regclass);
DROP FUNCTION causal.link_errors();

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

-- What replication writes of pg_causal's own.
GRANT SELECT, INSERT, UPDATE ON causal.regions, causal.fences, causal.heartbeats TO causal_replicator;
GRANT INSERT ON causal.quarantine TO causal_replicator;
GRANT USAGE ON SEQUENCE causal.quarantine_id_seq TO causal_replicator;

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
SELECT pg_catalog.pg_extension_config_dump('causal.fenced_deletions', '');

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

-- A removed region is a replicated fact (sql/regions.sql).
CREATE TABLE causal.removed_regions (
    region      text PRIMARY KEY,
    epoch       bigint NOT NULL,      -- its epoch when it was removed
    removed_at  causal.hlc NOT NULL
);
COMMENT ON TABLE causal.removed_regions IS 'regions removed from the mesh; a region of that name returns only at a larger epoch';
GRANT SELECT ON causal.removed_regions TO PUBLIC;
GRANT SELECT, INSERT, UPDATE ON causal.removed_regions TO causal_replicator;
SELECT pg_catalog.pg_extension_config_dump('causal.removed_regions', '');

-- What enable() stamped in place, for causalctl verify (sql/enable.sql).
-- Tables enabled so under 0.3.0 are not recorded: verify no longer takes
-- look-alike messages of theirs for one.
CREATE TABLE causal.stamped_in_place (
    message_table    regclass NOT NULL,
    region           text NOT NULL,
    stamped_through  causal.hlc NOT NULL,
    PRIMARY KEY (message_table, region)
);
COMMENT ON TABLE causal.stamped_in_place IS 'message tables whose rows causal.enable() stamped in this region without key and sent_at';
GRANT SELECT ON causal.stamped_in_place TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('causal.stamped_in_place', '');

-- catch_up says what is deleted, and with a cursor what was deleted since
-- (sql/merge.sql): a result type of its own, a column more than merge's.
DROP FUNCTION causal.catch_up(regclass, text, causal.hlc[], interval, causal.hlc);
CREATE TYPE causal.caught_up AS (
    position    bigint,    -- in the order of what is returned; NULL: a deletion of a message the client has
    msg_id      uuid,
    hlc         causal.hlc,
    delivered   boolean,
    concurrent  boolean,
    orphan      boolean,
    deleted     boolean    -- the message is deleted (a tombstone)
);
COMMENT ON TYPE causal.caught_up IS 'a message a client missed, or the deletion of one it has';
