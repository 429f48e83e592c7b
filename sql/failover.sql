-- Failover: heartbeats that replication carries (the failure detector),
-- what this instance hears of its peers, and the votes of quorum fencing.

-- Each region's latest heartbeat, written every causal.heartbeat_interval
-- by its liveness worker and carried to every region by the mesh, relayed
-- like any row. A max register: an older beat (a relayed copy) changes
-- nothing and so is not published again, which ends relay loops.
CREATE TABLE causal.heartbeats (
    region  text PRIMARY KEY,
    beat    bigint NOT NULL      -- the sender's clock, ms since the Unix epoch
);
COMMENT ON TABLE causal.heartbeats IS 'each region''s latest heartbeat, carried by replication';
GRANT SELECT ON causal.heartbeats TO PUBLIC;

CREATE FUNCTION causal.heartbeats_register() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.beat > OLD.beat THEN RETURN NEW; END IF;
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT FROM causal.heartbeats h WHERE h.region = NEW.region) THEN
    RETURN NEW;
  END IF;
  UPDATE causal.heartbeats h SET beat = NEW.beat WHERE h.region = NEW.region;
  RETURN NULL;
END $$;
CREATE TRIGGER heartbeats_register BEFORE INSERT OR UPDATE ON causal.heartbeats
    FOR EACH ROW EXECUTE FUNCTION causal.heartbeats_register();
ALTER TABLE causal.heartbeats ENABLE ALWAYS TRIGGER heartbeats_register;

CREATE FUNCTION causal.liveness(OUT region text, OUT last_heard timestamptz, OUT heard_ms_ago bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'liveness' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.liveness() IS
    'when this region last heard each peer''s heartbeat (needs shared_preload_libraries)';
CREATE FUNCTION causal.self_fenced() RETURNS boolean
    AS 'MODULE_PATHNAME', 'self_fenced' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.self_fenced() IS
    'whether this region fenced itself, cut off from the majority (causal.self_fence_after)';

-- The configuration of the mesh as this region sees it: who is in which
-- epoch and state. A fence is proposed against one configuration and voted
-- on by regions that see the same.
CREATE FUNCTION causal.mesh_view() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT md5(coalesce(string_agg(r.region || ' ' || r.epoch || ' ' || r.state, ',' ORDER BY r.region), ''))
    FROM causal.regions r
$$;

-- The votes this region cast: one fence per configuration. Local to the
-- region, never replicated; a vote whose fence did not land expires.
CREATE TABLE causal.fence_votes (
    view      text PRIMARY KEY,
    target    text NOT NULL,
    voted_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE causal.fence_votes IS 'fences this region voted for, one per configuration of the mesh';

-- 'yes', or why not. Decided by the rules of src/core/fencing.hpp.
CREATE FUNCTION causal.vote_fence(target text, view text) RETURNS text
    AS 'MODULE_PATHNAME', 'vote_fence' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION causal.vote_fence(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.vote_fence(text, text) TO causal_admin;
GRANT SELECT ON causal.fence_votes TO causal_admin;

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
  target pg_lsn := pg_current_wal_lsn();
  -- this region's slots, one per subscriber: causal_<region>_to_<peer>
  prefix text := 'causal_' || regexp_replace(lower(causal.gateway_region()), '[^a-z0-9]', '_', 'g') || '_to_';
  deadline timestamptz := clock_timestamp() + timeout;
  confirmed int;
BEGIN
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'causal.await_replicated() waits for committed writes: call it after COMMIT'
      USING ERRCODE = '25000';
  END IF;
  IF regions < 1 THEN
    RAISE EXCEPTION 'regions must be at least 1' USING ERRCODE = '22023';
  END IF;
  LOOP
    SELECT count(*) INTO confirmed FROM pg_replication_slots
     WHERE starts_with(slot_name, prefix) AND confirmed_flush_lsn >= target;
    EXIT WHEN confirmed >= regions;
    IF clock_timestamp() >= deadline THEN
      RAISE EXCEPTION 'only % of % other regions have this region''s writes up to % after %',
                      confirmed, regions, target, timeout
        USING ERRCODE = '5C004',
              HINT = 'Treat the write as not acknowledged: send it again with the same msg_id, here or in another region.';
    END IF;
    PERFORM pg_sleep(0.002);
  END LOOP;
  RETURN target;
END $$;
COMMENT ON FUNCTION causal.await_replicated(int, interval) IS
    'after COMMIT: wait until `regions` other regions have flushed this region''s writes (RPO zero)';
