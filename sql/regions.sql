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

-- Regions removed from the mesh for good (causalctl remove): a fact that
-- replicates like the others, so that a late copy of the region's row, of
-- its heartbeat or of a register (relayed by a peer that had not heard of
-- the removal yet) cannot bring it back as a ghost. A max register on
-- epoch: a region of that name joins again only above it.
CREATE TABLE causal.removed_regions (
    region      text PRIMARY KEY,
    epoch       bigint NOT NULL,      -- its epoch when it was removed
    removed_at  causal.hlc NOT NULL
);
COMMENT ON TABLE causal.removed_regions IS 'regions removed from the mesh; a region of that name returns only at a larger epoch';

GRANT SELECT ON causal.regions, causal.fences, causal.removed_regions TO PUBLIC;

-- The first copy of a row of one of these registers can arrive by several
-- paths at once (direct, relayed, carried by causalctl): one at a time,
-- or two inserts would collide and stop an apply worker. A row that is
-- already there is updated with the new copy instead, through its
-- register's UPDATE half, which keeps whichever wins. `key` names the
-- primary key's columns. For the registers' triggers alone.
CREATE FUNCTION causal.register_first_copy(new_row anyelement, key text[]) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass := (SELECT t.typrelid FROM pg_type t WHERE t.oid OPERATOR(pg_catalog.=) pg_typeof(new_row));
  matches text := (SELECT string_agg(format('t.%I OPERATOR(pg_catalog.=) ($1).%I', k, k), ' AND ') FROM unnest(key) k);
  found_row boolean;
  columns text;
  new_values text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(relation::text),
                                hashtext(array_to_string(ARRAY(SELECT to_jsonb(new_row) ->> k FROM unnest(key) k), ',')));
  EXECUTE format('SELECT EXISTS (SELECT FROM %s t WHERE %s)', relation, matches) INTO found_row USING new_row;
  IF NOT found_row THEN
    RETURN true;
  END IF;
  SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
         string_agg(format('($1).%I', a.attname), ', ' ORDER BY a.attnum)
    INTO columns, new_values
    FROM pg_attribute a
   WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname <> ALL (key);
  EXECUTE format('UPDATE %s t SET (%s) = ROW(%s) WHERE %s', relation, columns, new_values, matches) USING new_row;
  RETURN false;
END $$;
REVOKE ALL ON FUNCTION causal.register_first_copy(anyelement, text[]) FROM PUBLIC;

-- Whether `region` was removed and has not joined again since, at a
-- larger epoch: its rows are a ghost's.
CREATE FUNCTION causal.removed(region text, epoch bigint DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM causal.removed_regions x
                  WHERE x.region OPERATOR(pg_catalog.=) $1
                    AND x.epoch >= coalesce($2, (SELECT r.epoch FROM causal.regions r
                                                  WHERE r.region OPERATOR(pg_catalog.=) $1), x.epoch))
$$;
REVOKE ALL ON FUNCTION causal.removed(text, bigint) FROM PUBLIC;

-- pg_causal's triggers on its own tables are SECURITY DEFINER, so that they
-- run their statements in the replication workers too (which run none as
-- the replication role): each for its own table's trigger alone.
CREATE FUNCTION causal.require_trigger_on(relation regclass, function text, own_table regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF relation OPERATOR(pg_catalog.<>) own_table THEN
    RAISE EXCEPTION '% is %''s trigger', function, own_table USING ERRCODE = '39P01';
  END IF;
END $$;
REVOKE ALL ON FUNCTION causal.require_trigger_on(regclass, text, regclass) FROM PUBLIC;

CREATE FUNCTION causal.regions_register() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM causal.require_trigger_on(TG_RELID, 'causal.regions_register()', 'causal.regions');
  -- A removed region's row comes back only at a larger epoch.
  IF causal.removed(NEW.region, NEW.epoch) THEN
    RETURN NULL;
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
  RETURN CASE WHEN causal.register_first_copy(NEW, '{region}') THEN NEW END;
END $$;

CREATE FUNCTION causal.fences_register() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  earlier_fence bool;
  earlier_lift bool;
BEGIN
  PERFORM causal.require_trigger_on(TG_RELID, 'causal.fences_register()', 'causal.fences');
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
  ELSIF NOT causal.register_first_copy(NEW, '{region,epoch}') THEN
    RETURN NULL;
  ELSE
    earlier_fence := true;
    earlier_lift := NEW.lifted_at IS NOT NULL;
  END IF;
  -- Deletions the region wrote after fenced_at delete nothing: the relay
  -- looks for tombstones of theirs that this region already holds (the
  -- region's own, or ones that came before the fence did), whose bodies
  -- it then brings back from a live copy.
  IF earlier_fence THEN
    INSERT INTO causal.fence_scans AS s (region, epoch, since) VALUES (NEW.region, NEW.epoch, NEW.fenced_at)
    ON CONFLICT (region, epoch) DO UPDATE SET since = EXCLUDED.since
     WHERE causal.hlc_lt(EXCLUDED.since, s.since);
  END IF;
  -- The region writes again in a new epoch once the lift has reached it:
  -- its clock passes lifted_at first, so that its deletions from then on
  -- are stamped above it, outside the fenced interval. (Only there: a
  -- restore from a dump, before the server has a node id, has no clock.)
  IF earlier_lift AND NEW.region OPERATOR(pg_catalog.=) pg_catalog.current_setting('causal.region', true)
     AND pg_catalog.current_setting('causal.node_id', true) NOT IN ('', '-1') THEN
    PERFORM causal.hlc_observe(NEW.lifted_at);
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION causal.removed_regions_register() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM causal.require_trigger_on(TG_RELID, 'causal.removed_regions_register()', 'causal.removed_regions');
  IF TG_OP = 'UPDATE' THEN
    -- the larger epoch, and for one epoch the earlier removal
    IF NEW.epoch > OLD.epoch
       OR (NEW.epoch = OLD.epoch AND NEW.removed_at OPERATOR(pg_catalog.<) OLD.removed_at) THEN
      RETURN NEW;
    END IF;
    RETURN NULL;
  END IF;
  RETURN CASE WHEN causal.register_first_copy(NEW, '{region}') THEN NEW END;
END $$;

-- Where the removal lands, by any path, the region goes: its row, its
-- heartbeat and the votes to fence it; its fences stay, so that what it
-- wrote in a fenced epoch stays an orphan everywhere. (causal_mesh
-- publishes no DELETE: each region does this itself.) In the removed
-- region itself (a survivor's link to it outlived the removal) its row
-- stays: without it the region would count as not yet registered, and
-- take writes no link carries any more; with it, and the removal, its
-- writers are refused (5C001) as a fenced region's are.
CREATE FUNCTION causal.region_removed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM causal.require_trigger_on(TG_RELID, 'causal.region_removed()', 'causal.removed_regions');
  IF NEW.region OPERATOR(pg_catalog.=) current_setting('causal.region', true) THEN
    RETURN NULL;
  END IF;
  DELETE FROM causal.regions r WHERE r.region OPERATOR(pg_catalog.=) NEW.region AND r.epoch <= NEW.epoch;
  -- A region that joined again above that epoch keeps its beat: a peer
  -- that lacks its row would skip every later beat, an UPDATE.
  IF NOT EXISTS (SELECT FROM causal.regions r WHERE r.region OPERATOR(pg_catalog.=) NEW.region) THEN
    DELETE FROM causal.heartbeats h WHERE h.region OPERATOR(pg_catalog.=) NEW.region;
    DELETE FROM causal.fence_votes v WHERE v.target OPERATOR(pg_catalog.=) NEW.region;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER regions_register BEFORE INSERT OR UPDATE ON causal.regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_register();
ALTER TABLE causal.regions ENABLE ALWAYS TRIGGER regions_register;
CREATE TRIGGER fences_register BEFORE INSERT OR UPDATE ON causal.fences
    FOR EACH ROW EXECUTE FUNCTION causal.fences_register();
ALTER TABLE causal.fences ENABLE ALWAYS TRIGGER fences_register;

CREATE TRIGGER removed_regions_register BEFORE INSERT OR UPDATE ON causal.removed_regions
    FOR EACH ROW EXECUTE FUNCTION causal.removed_regions_register();
ALTER TABLE causal.removed_regions ENABLE ALWAYS TRIGGER removed_regions_register;
CREATE TRIGGER region_removed AFTER INSERT OR UPDATE ON causal.removed_regions
    FOR EACH ROW EXECUTE FUNCTION causal.region_removed();
ALTER TABLE causal.removed_regions ENABLE ALWAYS TRIGGER region_removed;

-- Backends cache their region's state; a committed change tells them all.
CREATE FUNCTION causal.regions_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'regions_changed' LANGUAGE C;
CREATE TRIGGER regions_changed AFTER INSERT OR UPDATE OR DELETE ON causal.regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_changed();
ALTER TABLE causal.regions ENABLE ALWAYS TRIGGER regions_changed;
CREATE TRIGGER fences_changed AFTER INSERT OR UPDATE OR DELETE ON causal.fences
    FOR EACH ROW EXECUTE FUNCTION causal.regions_changed();
ALTER TABLE causal.fences ENABLE ALWAYS TRIGGER fences_changed;
CREATE TRIGGER removed_regions_changed AFTER INSERT OR UPDATE OR DELETE ON causal.removed_regions
    FOR EACH ROW EXECUTE FUNCTION causal.regions_changed();
ALTER TABLE causal.removed_regions ENABLE ALWAYS TRIGGER removed_regions_changed;
-- Trigger functions are for these triggers alone.
REVOKE ALL ON FUNCTION causal.regions_register(), causal.fences_register(), causal.removed_regions_register(),
    causal.region_removed(), causal.regions_changed() FROM PUBLIC;

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
    -- a region of a name that was removed joins above the epoch it had
    INSERT INTO causal.regions (region, node_id, epoch, changed_at)
    VALUES (register_region.region, register_region.node_id,
            coalesce((SELECT x.epoch + 1 FROM causal.removed_regions x
                       WHERE x.region OPERATOR(pg_catalog.=) register_region.region), 0),
            causal.hlc_now())
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

-- Whether a deletion is a fenced region's: a tombstone's written_by and
-- deleted_at inside one of that region's fenced intervals, after fenced_at
-- and before lifted_at (src/core/merge.hpp, fenced_deletion). Such a
-- deletion deletes nothing (src/core/copies.hpp); causal.fenced_deletions
-- lists those that reached this region.
CREATE FUNCTION causal.is_fenced_deletion(written_by text, deleted_at causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'is_fenced_deletion' LANGUAGE C STABLE PARALLEL SAFE;

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
SELECT pg_catalog.pg_extension_config_dump('causal.removed_regions', '');
