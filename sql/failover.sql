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
