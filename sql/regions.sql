-- Regions, epochs and fences: the replicated facts behind the epoch fence.
--
-- Both tables travel with the data (publication causal_mesh) and converge
-- whatever order changes arrive in: causal.regions is a max register on
-- (epoch, changed_at), causal.fences a min register on fenced_at. Triggers
-- enforce that on every path, the replication apply worker's included, so
-- they are ENABLE ALWAYS and, like everything the apply worker runs,
-- schema-qualified.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'causal_admin') THEN
    CREATE ROLE causal_admin NOLOGIN;
  END IF;
END $$;
COMMENT ON ROLE causal_admin IS 'may fence, unfence and register pg_causal regions';

CREATE TABLE causal.regions (
    region      text PRIMARY KEY,
    node_id     int CHECK (node_id BETWEEN 0 AND 65535),
    epoch       bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'fenced')),
    fenced_at   causal.hlc,            -- when the current fence began; NULL while active
    changed_at  causal.hlc NOT NULL    -- orders concurrent changes within one epoch
);
COMMENT ON TABLE causal.regions IS 'each region''s epoch and state; epochs only grow';

-- Every fence ever put up: region's writes in `epoch` after `fenced_at` are
-- orphans, presented in the merged history at `lifted_at`, where the region
-- rejoined. One row per fenced epoch; both times are min registers.
CREATE TABLE causal.fences (
    region     text NOT NULL,
    epoch      bigint NOT NULL,
    fenced_at  causal.hlc NOT NULL,
    lifted_at  causal.hlc,            -- NULL until the region rejoins
    PRIMARY KEY (region, epoch)
);
COMMENT ON TABLE causal.fences IS 'fenced epochs: a region''s writes in that epoch after fenced_at are orphans';

GRANT SELECT ON causal.regions, causal.fences TO PUBLIC;

CREATE FUNCTION causal.regions_register() RETURNS trigger
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

CREATE FUNCTION causal.fences_register() RETURNS trigger
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

CREATE TRIGGER regions_register BEFORE INSERT OR UPDATE ON causal.regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_register();
ALTER TABLE causal.regions ENABLE ALWAYS TRIGGER regions_register;
CREATE TRIGGER fences_register BEFORE INSERT OR UPDATE ON causal.fences
    FOR EACH ROW EXECUTE FUNCTION causal.fences_register();
ALTER TABLE causal.fences ENABLE ALWAYS TRIGGER fences_register;

-- Backends cache their region's state; a committed change tells them all.
CREATE FUNCTION causal.regions_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'regions_changed' LANGUAGE C;
CREATE TRIGGER regions_changed AFTER INSERT OR UPDATE OR DELETE ON causal.regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_changed();
ALTER TABLE causal.regions ENABLE ALWAYS TRIGGER regions_changed;
CREATE TRIGGER fences_changed AFTER INSERT OR UPDATE OR DELETE ON causal.fences
    FOR EACH ROW EXECUTE FUNCTION causal.regions_changed();
ALTER TABLE causal.fences ENABLE ALWAYS TRIGGER fences_changed;
-- Trigger functions are for these triggers alone.
REVOKE ALL ON FUNCTION causal.regions_register(), causal.fences_register(), causal.regions_changed() FROM PUBLIC;

CREATE FUNCTION causal.register_region(region text, node_id int) RETURNS causal.regions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result causal.regions;
BEGIN
  -- Every change carries a newer changed_at, or the register keeps the old row.
  UPDATE causal.regions r SET node_id = register_region.node_id, changed_at = causal.hlc_now()
   WHERE r.region = register_region.region
  RETURNING * INTO result;
  IF NOT FOUND THEN
    INSERT INTO causal.regions (region, node_id, changed_at)
    VALUES (register_region.region, register_region.node_id, causal.hlc_now())
    RETURNING * INTO result;
  END IF;
  RETURN result;
END $$;

-- The checks fence_region and unfence_region share: both arguments given,
-- and an epoch above the region's current one (epochs only grow).
CREATE FUNCTION causal.require_newer_epoch(region text, epoch bigint, current_epoch bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF region IS NULL OR epoch IS NULL THEN
    RAISE EXCEPTION 'region and epoch must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF epoch <= current_epoch THEN
    RAISE EXCEPTION 'epoch % is not newer than region "%"''s epoch %', epoch, region, current_epoch
      USING ERRCODE = '5C002', HINT = 'Epochs only grow: pass one above the current epoch.';
  END IF;
END $$;

-- Fences `region`: its writes in its current epoch from now on are orphans,
-- it refuses local writes once it learns of the fence, and its epoch becomes
-- `epoch`, which must be larger than its current one.
CREATE FUNCTION causal.fence_region(region text, epoch bigint) RETURNS causal.regions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  now causal.hlc := causal.hlc_now();
  current causal.regions;
BEGIN
  PERFORM causal.require_newer_epoch(region, epoch, NULL::bigint);
  IF NOT EXISTS (SELECT FROM causal.regions r WHERE r.region = fence_region.region) THEN
    INSERT INTO causal.regions (region, changed_at) VALUES (fence_region.region, now);
  END IF;
  SELECT * INTO current FROM causal.regions r WHERE r.region = fence_region.region FOR UPDATE;
  PERFORM causal.require_newer_epoch(region, epoch, current.epoch);
  INSERT INTO causal.fences (region, epoch, fenced_at) VALUES (current.region, current.epoch, now);
  UPDATE causal.regions r
     SET epoch = fence_region.epoch, state = 'fenced', fenced_at = now, changed_at = now
   WHERE r.region = fence_region.region
  RETURNING * INTO current;
  RETURN current;
END $$;

-- Lifts the fence of `region` with a new, larger epoch. Its orphans take
-- their place in merged histories here, where it rejoined.
CREATE FUNCTION causal.unfence_region(region text, epoch bigint) RETURNS causal.regions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  now causal.hlc := causal.hlc_now();
  current causal.regions;
BEGIN
  PERFORM causal.require_newer_epoch(region, epoch, NULL::bigint);
  SELECT * INTO current FROM causal.regions r WHERE r.region = unfence_region.region FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'region "%" is not registered', unfence_region.region USING ERRCODE = '42704';
  END IF;
  -- The fence and the fenced state travel in one transaction: a region that
  -- is fenced here has its fence rows here too, for lifted_at to be set on.
  IF current.state <> 'fenced' THEN
    RAISE EXCEPTION 'region "%" is not fenced here', unfence_region.region USING ERRCODE = '55000',
      HINT = 'Its fence may not have reached this region yet: wait, or unfence it where it is fenced.';
  END IF;
  PERFORM causal.require_newer_epoch(region, epoch, current.epoch);
  UPDATE causal.fences f SET lifted_at = now
   WHERE f.region = unfence_region.region AND f.lifted_at IS NULL;
  UPDATE causal.regions r
     SET epoch = unfence_region.epoch, state = 'active', fenced_at = NULL, changed_at = now
   WHERE r.region = unfence_region.region
  RETURNING * INTO current;
  RETURN current;
END $$;

REVOKE ALL ON FUNCTION causal.register_region(text, int), causal.fence_region(text, bigint),
    causal.unfence_region(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.register_region(text, int), causal.fence_region(text, bigint),
    causal.unfence_region(text, bigint), causal.hlc_observe(causal.hlc) TO causal_admin;

-- Where the clients of `region` go while it is fenced: the first active
-- region other than it, by name in byte order (the same answer in every
-- region that sees the same states). The rule lives in the library
-- (extension/mesh/regions.cpp), which also gives it in the 5C001 HINT a fenced
-- region's writers get; causalctl failover's advice asks here.
CREATE FUNCTION causal.region_for_clients(region text) RETURNS text
    AS 'MODULE_PATHNAME', 'region_for_clients' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION causal.region_for_clients(text) IS
    'the active region the clients of a fenced region are sent to';

-- Whether a message is an orphan by itself: written by `region` in an epoch
-- that was fenced before `hlc`. The same answer in every region once the
-- fences have replicated. (Its causal descendants are orphans too; the merge
-- aggregate follows deps to find them.) The rule is the merge's own
-- (src/core/merge.hpp, fenced_write), against causal.fences as the query
-- sees it.
CREATE FUNCTION causal.is_orphan(region text, epoch bigint, hlc causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'is_orphan' LANGUAGE C STABLE PARALLEL SAFE;

-- The name of the link along which `to_region` receives what `from_region`
-- writes: its subscription there, its slot in `from_region`. The one rule
-- (src/core/links.hpp) that causalctl makes them by.
CREATE FUNCTION causal.link_name(from_region text, to_region text) RETURNS name
    AS 'MODULE_PATHNAME', 'link_name' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Every link of the mesh as causal.regions has it: what the monitoring
-- queries and causal.await_replicated() find subscriptions and slots by.
CREATE VIEW causal.links WITH (security_invoker = true) AS
SELECT f.region AS from_region, t.region AS to_region, causal.link_name(f.region, t.region) AS link
  FROM causal.regions f CROSS JOIN causal.regions t
 WHERE f.region OPERATOR(pg_catalog.<>) t.region;
COMMENT ON VIEW causal.links IS 'each link of the mesh: the subscription in to_region and the slot in from_region';
GRANT SELECT ON causal.links TO PUBLIC;

-- pg_dump keeps the fencing state: without it a restored region would
-- forget its epochs, and orphans would no longer be orphans.
SELECT pg_catalog.pg_extension_config_dump('causal.regions', '');
SELECT pg_catalog.pg_extension_config_dump('causal.fences', '');
