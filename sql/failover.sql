-- Failover: heartbeats that replication carries (the failure detector),
-- what this instance hears of its peers, and the votes of quorum fencing.

-- Each region's latest heartbeat, written every causal.heartbeat_interval
-- by its liveness worker and carried to every region by the mesh, relayed
-- like any row. A max register: an older beat (a relayed copy) changes
-- nothing and so is not published again, which ends relay loops.
CREATE TABLE causal.heartbeats (
    region  text PRIMARY KEY,
    beat    bigint NOT NULL,     -- the sender's clock, ms since the Unix epoch
    -- Below this hlc the sender had committed every message it stamped when
    -- it sent the beat: a region that has the beat has those messages
    -- (replication keeps commit order, relayed or not).
    stable  causal.hlc
);
COMMENT ON TABLE causal.heartbeats IS 'each region''s latest heartbeat, carried by replication';
GRANT SELECT ON causal.heartbeats TO PUBLIC;

CREATE FUNCTION causal.heartbeats_register() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM causal.require_trigger_on(TG_RELID, 'causal.heartbeats_register()', 'causal.heartbeats');
  -- A late beat of a removed region brings no ghost back.
  IF causal.removed(NEW.region) THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF NEW.beat > OLD.beat THEN RETURN NEW; END IF;
    RETURN NULL;
  END IF;
  RETURN CASE WHEN causal.register_first_copy(NEW, '{region}') THEN NEW END;
END $$;
CREATE TRIGGER heartbeats_register BEFORE INSERT OR UPDATE ON causal.heartbeats
    FOR EACH ROW EXECUTE FUNCTION causal.heartbeats_register();
ALTER TABLE causal.heartbeats ENABLE ALWAYS TRIGGER heartbeats_register;
REVOKE ALL ON FUNCTION causal.heartbeats_register() FROM PUBLIC;

CREATE FUNCTION causal.liveness(OUT region text, OUT last_heard timestamptz, OUT heard_ms_ago bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'liveness' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.liveness() IS
    'when this region last heard each peer''s heartbeat (needs shared_preload_libraries)';
CREATE FUNCTION causal.self_fenced() RETURNS boolean
    AS 'MODULE_PATHNAME', 'self_fenced' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.self_fenced() IS
    'whether this region fenced itself, cut off from the majority (causal.self_fence_after)';

-- The last error of each subscription's replication worker since the server
-- started (extension/mesh/link_errors.cpp), which PostgreSQL 15 keeps only in
-- the log, for causalctl status: its SQLSTATE, its message as PostgreSQL
-- wrote it before any value went in (a row's values are not kept), and the
-- objects it names; and, beside it, the relay's last error pulling what the
-- link's source wrote through another peer (`by_relay`). For causal_admin
-- and pg_monitor.
CREATE FUNCTION causal.link_errors(OUT subscription oid, OUT failed_at timestamptz, OUT table_sync boolean,
                                   OUT sqlstate text, OUT message text, OUT object text, OUT by_relay boolean)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'link_errors' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.link_errors() IS
    'the last error of each subscription''s apply or table sync worker, and of the relay for its source, since the server started';
REVOKE ALL ON FUNCTION causal.link_errors() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.link_errors() TO causal_admin, pg_monitor;

-- The configuration of the mesh as this region sees it: who is in which
-- epoch and state. A fence is proposed against one configuration and voted
-- on by regions that see the same.
-- Byte order and quoted names: the same digest in every region, whatever
-- each database's collation.
CREATE FUNCTION causal.mesh_view() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT md5(coalesce(string_agg(format('%L %s %s', r.region, r.epoch, r.state), ','
                                 ORDER BY r.region COLLATE "C"), ''))
    FROM causal.regions r
$$;

-- The votes this region cast. Local to the region, never replicated. A vote
-- is pending until this region sees its target leave the voted epoch (the
-- fence landed); while one is pending, the region votes for no other fence.
-- An operator who gave up can finish the fence by running failover again,
-- or an admin can delete the row.
CREATE TABLE causal.fence_votes (
    target        text PRIMARY KEY,
    target_epoch  bigint NOT NULL,
    view          text NOT NULL,
    voted_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE causal.fence_votes IS 'fences this region voted for that it has not seen land';

-- 'yes', or why not. Decided by the rules of src/core/fencing.hpp.
CREATE FUNCTION causal.vote_fence(target text, view text) RETURNS text
    AS 'MODULE_PATHNAME', 'vote_fence' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION causal.vote_fence(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.vote_fence(text, text) TO causal_admin;
GRANT SELECT, DELETE ON causal.fence_votes TO causal_admin;

-- Applies a fence voted for against `view`, here, only if this region still
-- sees that configuration and voted for it: a fence never lands on a
-- configuration it was not judged against.
CREATE FUNCTION causal.apply_fence(target text, view text) RETURNS causal.regions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  next_epoch bigint;
BEGIN
  LOCK TABLE causal.fence_votes IN EXCLUSIVE MODE;
  IF causal.mesh_view() <> view THEN
    RAISE EXCEPTION 'the configuration of the mesh changed since the vote' USING ERRCODE = '40001',
      HINT = 'Run causalctl failover again.';
  END IF;
  IF NOT EXISTS (SELECT FROM causal.fence_votes v WHERE v.target = apply_fence.target AND v.view = apply_fence.view) THEN
    RAISE EXCEPTION 'this region did not vote to fence "%" in this configuration', target USING ERRCODE = '55000';
  END IF;
  SELECT r.epoch + 1 INTO next_epoch FROM causal.regions r WHERE r.region = apply_fence.target;
  RETURN causal.fence_region(target, next_epoch);
END $$;
REVOKE ALL ON FUNCTION causal.apply_fence(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.apply_fence(text, text) TO causal_admin;

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

-- causalctl remove: a region leaves the mesh for good. Its removal
-- (causal.removed_regions) replicates, and where it lands the region's row
-- goes from causal.regions (the majority is counted over the rest), with
-- its heartbeat and the votes to fence it; its fences stay, so that what
-- it wrote in a fenced epoch stays an orphan everywhere. causalctl runs it
-- in every region it reaches; the others learn it from them. Returns
-- whether the region was registered here.
CREATE FUNCTION causal.unregister_region(region text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  registered causal.regions;
BEGIN
  IF region IS NULL THEN
    RAISE EXCEPTION 'region must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF region = current_setting('causal.region', true) THEN
    RAISE EXCEPTION 'region "%" is this region: a region does not remove itself', region USING ERRCODE = '55000',
      HINT = 'Remove it from the other regions (causalctl remove).';
  END IF;
  SELECT * INTO registered FROM causal.regions r WHERE r.region = unregister_region.region;
  IF registered.state = 'active' THEN
    RAISE EXCEPTION 'region "%" is active', region USING ERRCODE = '55000',
      HINT = 'Fence it first (causalctl failover): its clients must stop writing where the mesh no longer reads.';
  END IF;
  INSERT INTO causal.removed_regions (region, epoch, removed_at)
  VALUES (unregister_region.region,
          greatest(coalesce(registered.epoch, 0),
                   (SELECT x.epoch FROM causal.removed_regions x WHERE x.region = unregister_region.region)),
          causal.hlc_now());
  RETURN registered.region IS NOT NULL;
END $$;
REVOKE ALL ON FUNCTION causal.unregister_region(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.unregister_region(text) TO causal_admin;

-- RPO zero on demand. After COMMIT, a client that must not lose a message
-- with its region calls this and counts the message acknowledged only when
-- it returns: `regions` other regions have flushed everything this region
-- had written when it was called. On timeout it raises 5C004, and the
-- client retries the send with the same msg_id, here or elsewhere (the
-- msg_id makes the retry harmless).
--
-- Why not synchronous_standby_names over the subscriptions: a commit waits
-- for its standbys while still holding its locks, NOTIFY's among them, and
-- the apply workers of the other regions need that lock to apply (they
-- notify too). With writers in every region the mesh waits in a circle; the
-- cluster test of this function found it. Waiting after the commit holds
-- nothing.
CREATE FUNCTION causal.await_replicated(regions int DEFAULT 1, timeout interval DEFAULT '10 s')
RETURNS pg_lsn LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- the insert position: past this session's commit record even when the
  -- commit did not wait for its WAL to be written (synchronous_commit = off)
  target pg_lsn := pg_current_wal_insert_lsn();
  -- the mesh's slots here: one per region that subscribes to this one
  slots name[] := ARRAY(SELECT l.link FROM causal.links l
                         WHERE l.from_region OPERATOR(pg_catalog.=) current_setting('causal.region', true));
  deadline timestamptz := clock_timestamp() + timeout;
  confirmed int;
BEGIN
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'causal.await_replicated() waits for committed writes: call it after COMMIT'
      USING ERRCODE = '25000';
  END IF;
  IF regions < 1 OR regions > (SELECT count(*) FROM pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) ANY (slots)) THEN
    RAISE EXCEPTION 'regions must be between 1 and the number of regions subscribed to this one'
      USING ERRCODE = '22023';
  END IF;
  LOOP
    SELECT count(*) INTO confirmed FROM pg_replication_slots
     WHERE slot_name OPERATOR(pg_catalog.=) ANY (slots) AND confirmed_flush_lsn >= target;
    EXIT WHEN confirmed >= regions;
    IF clock_timestamp() >= deadline THEN
      RAISE EXCEPTION 'only % of % other regions have this region''s writes up to % after %',
                      confirmed, regions, target, timeout
        USING ERRCODE = '5C004',
              HINT = 'Treat the write as not acknowledged: send it again with the same msg_id, here or in another region.';
    END IF;
    PERFORM pg_sleep(0.005);
  END LOOP;
  RETURN target;
END $$;
COMMENT ON FUNCTION causal.await_replicated(int, interval) IS
    'after COMMIT: wait until `regions` other regions have flushed this region''s writes (RPO zero)';

-- A client's cursor. Below the hlc this returns, this region holds every
-- message of every region, fenced ones included: its own below its stable
-- point now, each peer's below the stable point of the last heartbeat it
-- received from it (stable.hpp). A client that reads a conversation takes
-- it first, keeps it with the hlcs it shows at or above it, and gets
-- exactly what it has not seen from causal.catch_up(..., since => it), in
-- any region, reading only what lies above it. Lags real time by about a
-- heartbeat and the replication delay; stands still while a region is
-- silent (its messages may still come).
CREATE FUNCTION causal.local_stable() RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'local_stable' LANGUAGE C VOLATILE;
CREATE FUNCTION causal.stable_hlc() RETURNS causal.hlc
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
COMMENT ON FUNCTION causal.stable_hlc() IS
    'a cursor: below this hlc this region holds every message of every region';

-- Messages held here for a dependency still on its way, per message table
-- the caller may read (SELECT on it, USAGE on its schema), and how long ago the oldest was written. Such a
-- message lies above the stable point (its dependency is older than it, and
-- below the stable point every message is here), so only the rows stamped
-- since then are read, along the index of latest stamps: a scrape reads the
-- last seconds of each table, not the table. A dependency no region has
-- (which causalctl verify reports) leaves its message held below the stable
-- point once the point passes it, and is not counted here. Replies to a held
-- message wait with it and are not counted either: this counts the messages
-- a missing dependency holds directly. A table whose row-level security
-- applies to the caller is left out: reading it would run its policies as
-- the caller.
CREATE FUNCTION causal.held_messages(OUT message_table regclass, OUT held bigint, OUT oldest_seconds double precision)
RETURNS SETOF record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t record;
  since causal.hlc := causal.stable_hlc();
BEGIN
  FOR t IN SELECT m.relid, m.conversation FROM causal.message_tables() m
            WHERE m.conversation IS NOT NULL AND has_table_privilege(m.relid, 'SELECT')
              AND has_schema_privilege((SELECT c.relnamespace FROM pg_class c WHERE c.oid = m.relid), 'USAGE')
              -- Under row-level security for the caller, the table's policies
              -- would run as the caller (the exporter): such a table is not read.
              AND NOT row_security_active(m.relid) LOOP
    RETURN QUERY EXECUTE format($q$
      SELECT %1$L::regclass, count(*),
             extract(epoch FROM clock_timestamp() - min(causal.hlc_to_timestamptz(w.hlc)))::float8
        FROM ONLY %1$s w
       WHERE causal.latest_stamp(w.hlc, w.deleted_at, w.copies) >= $1
         AND EXISTS (SELECT FROM unnest(w.deps) d
                      WHERE NOT EXISTS (SELECT FROM ONLY %1$s p WHERE p.%2$I = w.%2$I AND p.hlc = d)
                        AND NOT EXISTS (SELECT FROM ONLY %1$s p, unnest(p.copies) c
                                         WHERE p.%2$I = w.%2$I AND c.hlc = d))$q$,
      t.relid, t.conversation) USING since;
  END LOOP;
END $$;
COMMENT ON FUNCTION causal.held_messages() IS
    'per message table the caller may read: messages held for a dependency still on its way, and the age of the oldest';
