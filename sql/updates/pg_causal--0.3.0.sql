-- pg_causal 0.3.0 as it shipped (4bc0738, sql/*.sql in the Makefile's order): installed so that
-- CREATE EXTENSION pg_causal VERSION '0.3.0' can make an old database to update (the upgrade tests).
-- Schema causal holds every object of the extension. The extension makes it
-- itself (pg_causal.control names pg_catalog as the extension's schema, as
-- pg_cron does), so the schema is a member of the extension: DROP
-- EXTENSION removes it, and one that is already there is never adopted. Its
-- owner, whoever made it, could otherwise replace or overload what
-- pg_causal's SECURITY DEFINER functions call.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'causal') THEN
    RAISE EXCEPTION 'schema "causal" already exists' USING ERRCODE = '42P06',
      DETAIL = format('pg_causal creates schema causal itself and never installs into one that was there '
                      'before: its owner (%s) could change what pg_causal runs.',
                      (SELECT nspowner::regrole FROM pg_catalog.pg_namespace
                        WHERE nspname OPERATOR(pg_catalog.=) 'causal')),
      HINT = 'Drop or rename that schema, then create the extension.';
  END IF;
END $$;
CREATE SCHEMA causal;
-- Everyone may look it up, as in public; what each object allows is granted
-- on the object.
GRANT USAGE ON SCHEMA causal TO PUBLIC;
-- causal.hlc: a hybrid logical clock timestamp. 48 bits of physical
-- milliseconds, a 16-bit logical counter, a 16-bit node id; ordered by
-- (physical, logical, node).

CREATE TYPE causal.hlc;

CREATE FUNCTION causal.hlc_in(cstring) RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_out(causal.hlc) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hlc_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_recv(internal) RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_send(causal.hlc) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hlc_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE causal.hlc (
    INTERNALLENGTH = 16,
    INPUT = causal.hlc_in,
    OUTPUT = causal.hlc_out,
    RECEIVE = causal.hlc_recv,
    SEND = causal.hlc_send,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE causal.hlc IS
    'hybrid logical clock timestamp: <physical_ms>.<logical, 5 digits>@<node>';

-- Parts

CREATE FUNCTION causal.hlc_from_parts(physical_ms bigint, logical int, node int)
    RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_from_parts' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_physical_ms(causal.hlc) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hlc_physical_ms' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_logical(causal.hlc) RETURNS int
    AS 'MODULE_PATHNAME', 'hlc_logical' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_node(causal.hlc) RETURNS int
    AS 'MODULE_PATHNAME', 'hlc_node' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION causal.hlc_to_timestamptz(causal.hlc) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'hlc_to_timestamptz' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (causal.hlc AS timestamptz) WITH FUNCTION causal.hlc_to_timestamptz(causal.hlc);

-- Comparison

CREATE FUNCTION causal.hlc_eq(causal.hlc, causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'hlc_eq' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION causal.hlc_ne(causal.hlc, causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'hlc_ne' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION causal.hlc_lt(causal.hlc, causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'hlc_lt' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION causal.hlc_le(causal.hlc, causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'hlc_le' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION causal.hlc_gt(causal.hlc, causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'hlc_gt' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION causal.hlc_ge(causal.hlc, causal.hlc) RETURNS bool
    AS 'MODULE_PATHNAME', 'hlc_ge' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION causal.hlc_cmp(causal.hlc, causal.hlc) RETURNS int
    AS 'MODULE_PATHNAME', 'hlc_cmp' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;

CREATE OPERATOR pg_catalog.= (
    LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = causal.hlc_eq,
    COMMUTATOR = OPERATOR(pg_catalog.=), NEGATOR = OPERATOR(pg_catalog.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR pg_catalog.<> (
    LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = causal.hlc_ne,
    COMMUTATOR = OPERATOR(pg_catalog.<>), NEGATOR = OPERATOR(pg_catalog.=),
    RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR pg_catalog.< (
    LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = causal.hlc_lt,
    COMMUTATOR = OPERATOR(pg_catalog.>), NEGATOR = OPERATOR(pg_catalog.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR pg_catalog.<= (
    LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = causal.hlc_le,
    COMMUTATOR = OPERATOR(pg_catalog.>=), NEGATOR = OPERATOR(pg_catalog.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR pg_catalog.> (
    LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = causal.hlc_gt,
    COMMUTATOR = OPERATOR(pg_catalog.<), NEGATOR = OPERATOR(pg_catalog.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR pg_catalog.>= (
    LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = causal.hlc_ge,
    COMMUTATOR = OPERATOR(pg_catalog.<=), NEGATOR = OPERATOR(pg_catalog.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel
);

-- Index support

CREATE FUNCTION causal.hlc_sortsupport(internal) RETURNS void
    AS 'MODULE_PATHNAME', 'hlc_sortsupport' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS causal.hlc_ops DEFAULT FOR TYPE causal.hlc USING btree AS
    OPERATOR 1 pg_catalog.<,
    OPERATOR 2 pg_catalog.<=,
    OPERATOR 3 pg_catalog.=,
    OPERATOR 4 pg_catalog.>=,
    OPERATOR 5 pg_catalog.>,
    FUNCTION 1 causal.hlc_cmp(causal.hlc, causal.hlc),
    FUNCTION 2 causal.hlc_sortsupport(internal),
    -- equal values are bitwise equal (the padding is always zero), so btree
    -- may deduplicate
    FUNCTION 4 pg_catalog.btequalimage(oid);

CREATE FUNCTION causal.hlc_hash(causal.hlc) RETURNS int
    AS 'MODULE_PATHNAME', 'hlc_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_hash_extended(causal.hlc, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hlc_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS causal.hlc_hash_ops DEFAULT FOR TYPE causal.hlc USING hash AS
    OPERATOR 1 pg_catalog.=,
    FUNCTION 1 causal.hlc_hash(causal.hlc),
    FUNCTION 2 causal.hlc_hash_extended(causal.hlc, bigint);

CREATE OPERATOR CLASS causal.hlc_minmax_ops DEFAULT FOR TYPE causal.hlc USING brin AS
    OPERATOR 1 pg_catalog.<,
    OPERATOR 2 pg_catalog.<=,
    OPERATOR 3 pg_catalog.=,
    OPERATOR 4 pg_catalog.>=,
    OPERATOR 5 pg_catalog.>,
    FUNCTION 1 pg_catalog.brin_minmax_opcinfo(internal),
    FUNCTION 2 pg_catalog.brin_minmax_add_value(internal, internal, internal, internal),
    FUNCTION 3 pg_catalog.brin_minmax_consistent(internal, internal, internal),
    FUNCTION 4 pg_catalog.brin_minmax_union(internal, internal, internal);

-- min / max

CREATE FUNCTION causal.hlc_smaller(causal.hlc, causal.hlc) RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_smaller' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION causal.hlc_larger(causal.hlc, causal.hlc) RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_larger' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE pg_catalog.min(causal.hlc) (
    SFUNC = causal.hlc_smaller, STYPE = causal.hlc,
    COMBINEFUNC = causal.hlc_smaller, SORTOP = OPERATOR(pg_catalog.<), PARALLEL = SAFE
);
CREATE AGGREGATE pg_catalog.max(causal.hlc) (
    SFUNC = causal.hlc_larger, STYPE = causal.hlc,
    COMBINEFUNC = causal.hlc_larger, SORTOP = OPERATOR(pg_catalog.>), PARALLEL = SAFE
);
-- The instance clock (needs shared_preload_libraries = 'pg_causal').

CREATE FUNCTION causal.hlc_now() RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_now' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION causal.hlc_now() IS
    'local event: a timestamp above every one this instance issued before';

CREATE FUNCTION causal.hlc_observe(remote causal.hlc) RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_observe' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION causal.hlc_observe(causal.hlc) IS
    'receive event: a timestamp above the remote one, unless that is more than causal.max_clock_offset ahead';
-- It moves the instance's clock for everyone, up to the max offset ahead:
-- not for every role.
REVOKE ALL ON FUNCTION causal.hlc_observe(causal.hlc) FROM PUBLIC;

CREATE FUNCTION causal.hlc_current() RETURNS causal.hlc
    AS 'MODULE_PATHNAME', 'hlc_current' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION causal.hlc_current() IS 'the last timestamp issued, without ticking';

CREATE FUNCTION causal.clock_status(
    OUT current causal.hlc,
    OUT node_id int,
    OUT region text,
    OUT physical_clock timestamptz,
    OUT ahead_of_physical_ms bigint,
    OUT offset_rejections bigint,
    OUT max_remote_lead_ms bigint,
    OUT max_clock_offset_ms int,
    OUT persisted_ceiling timestamptz)
    AS 'MODULE_PATHNAME', 'clock_status' LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW causal.clock_status AS SELECT * FROM causal.clock_status();
GRANT SELECT ON causal.clock_status TO PUBLIC;
-- CockroachDB-compatible names where the concepts meet.

CREATE FUNCTION causal.hlc_to_numeric(causal.hlc) RETURNS numeric
    AS 'MODULE_PATHNAME', 'hlc_to_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (causal.hlc AS numeric) WITH FUNCTION causal.hlc_to_numeric(causal.hlc);

CREATE FUNCTION causal.cluster_logical_timestamp() RETURNS numeric
    AS 'MODULE_PATHNAME', 'cluster_logical_timestamp' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION causal.cluster_logical_timestamp() IS
    'the transaction''s hlc in CockroachDB''s DECIMAL form: wall nanoseconds, ten digits of logical counter';

CREATE FUNCTION causal.gateway_region() RETURNS text
    AS 'MODULE_PATHNAME', 'gateway_region' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION causal.gateway_region() IS 'the region this instance serves (causal.region)';
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

CREATE FUNCTION causal.fences_register() RETURNS trigger
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
-- (extension/regions.cpp), which also gives it in the 5C001 HINT a fenced
-- region's writers get; causalctl failover's advice asks here.
CREATE FUNCTION causal.region_for_clients(region text) RETURNS text
    AS 'MODULE_PATHNAME', 'region_for_clients' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION causal.region_for_clients(text) IS
    'the active region the clients of a fenced region are sent to';

-- Whether a message is an orphan by itself: written by `region` in an epoch
-- that was fenced before `hlc`. The same answer in every region once the
-- fences have replicated. (Its causal descendants are orphans too; the merge
-- aggregate follows deps to find them.)
CREATE FUNCTION causal.is_orphan(region text, epoch bigint, hlc causal.hlc) RETURNS bool
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM causal.fences f
                  WHERE f.region = $1 AND f.epoch = $2 AND $3 OPERATOR(pg_catalog.>) f.fenced_at)
$$;

-- pg_dump keeps the fencing state: without it a restored region would
-- forget its epochs, and orphans would no longer be orphans.
SELECT pg_catalog.pg_extension_config_dump('causal.regions', '');
SELECT pg_catalog.pg_extension_config_dump('causal.fences', '');
-- Causal message tables: causal.enable() turns an ordinary table into one,
-- and the C++ triggers guard both of its write paths (extension/
-- message_trigger.cpp). causal.message_tables() says which tables are
-- message tables and whether each is still what enable() made; the event
-- trigger causal_guard_ddl (sql/guard.sql) keeps tenants from changing that.

-- Rows the replication apply path could not take, kept with the reason. The
-- apply path never raises (that would stop replication for good); this is
-- where what it cannot take goes instead. Local to each region.
CREATE TABLE causal.quarantine (
    id             bigserial PRIMARY KEY,
    table_name     text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason         text NOT NULL,
    row_data       jsonb NOT NULL
);
COMMENT ON TABLE causal.quarantine IS 'replicated rows the apply path could not take, with the reason';
-- The rows are messages: only causal_admin reads them.
GRANT SELECT, DELETE ON causal.quarantine TO causal_admin;

-- A copy of a message other than the one its row is headed by: a retry in
-- another region gets an hlc of its own, and clients may have replied to
-- either. A message table's `copies` column keeps every such copy's stamp,
-- so that every hlc the message was ever given keeps naming it, and the
-- merge can present the copy an active region acknowledged over one a
-- fenced region wrote (src/core/copies.hpp).
CREATE TYPE causal.copy AS (
    hlc     causal.hlc,
    deps    causal.hlc[],
    region  text,
    epoch   bigint
);
COMMENT ON TYPE causal.copy IS 'the stamp of one copy of a message: hlc, deps, region, epoch';

CREATE FUNCTION causal.new_msg_id() RETURNS uuid
    AS 'MODULE_PATHNAME', 'new_msg_id' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION causal.new_msg_id() IS
    'a time-ordered UUID (version 7): the default msg_id, cheap to index';

-- The triggers' functions. Not for PUBLIC: a role that could put them on a
-- table of its own could feed them any row. causal.enable() (SECURITY
-- DEFINER) creates the triggers; firing one needs no privilege.
CREATE FUNCTION causal.message_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_trigger' LANGUAGE C;
CREATE FUNCTION causal.message_stored() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_stored' LANGUAGE C;
CREATE FUNCTION causal.message_truncate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_truncate' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.message_trigger(), causal.message_stored(), causal.message_truncate() FROM PUBLIC;

-- Runs one of causal.enable()'s statements as the table's owner, in a
-- security-restricted operation: whatever of the owner's code it fires
-- (a CHECK constraint, an index expression) runs with the owner's rights,
-- not the admin's. Only superusers (and so enable()) may call it.
CREATE FUNCTION causal.run_as_owner(message_table regclass, statement text, replica boolean DEFAULT false)
    RETURNS void AS 'MODULE_PATHNAME', 'run_as_owner' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.run_as_owner(regclass, text, boolean) FROM PUBLIC;

CREATE FUNCTION causal.table_stats(
    OUT relid regclass,
    OUT local_inserts bigint,
    OUT applied bigint,
    OUT duplicates bigint,
    OUT winners_replaced bigint,
    OUT orphans bigint,
    OUT quarantined bigint,
    OUT offset_rejections bigint,
    OUT announced bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'table_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.table_stats() IS
    'per causal message table the caller may read, counted since the server started';

CREATE VIEW causal.stat_tables AS
SELECT s.* FROM causal.table_stats() s
 WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) s.relid);
COMMENT ON VIEW causal.stat_tables IS 'per causal message table the caller may read, counted since the server started';
GRANT SELECT ON causal.stat_tables TO PUBLIC;

-- The columns a causal message table carries, with their types.
CREATE FUNCTION causal.message_columns(OUT name text, OUT type regtype, OUT definition text)
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

-- The index of `relation` whose key columns are exactly `columns`, if any:
-- enable() recognizes its own indexes by what they index, not by name.
CREATE FUNCTION causal.index_on(relation regclass, columns name[], must_be_unique boolean)
RETURNS regclass LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.indexrelid::regclass FROM pg_index i
   WHERE i.indrelid = relation AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
     AND (i.indisunique OR NOT must_be_unique)
     AND i.indnkeyatts = cardinality(columns)
     AND ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum
               ORDER BY k.n) = columns
   ORDER BY i.indexrelid LIMIT 1
$$;

-- pg_causal's three trigger functions: message_trigger, message_stored,
-- message_truncate, in the order of their triggers causal_message,
-- causal_message_stored, causal_message_truncate.
CREATE FUNCTION causal.trigger_functions() RETURNS oid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ARRAY['causal.message_trigger()'::regprocedure, 'causal.message_stored()'::regprocedure,
               'causal.message_truncate()'::regprocedure]::oid[]
$$;

-- What of `relation` would run code while the replication apply worker,
-- a superuser, builds a row from replicated values, before any trigger
-- fires: domain types (their constraints check every value) and column
-- defaults (filled in for columns the sending region lacks) of a role that
-- is not a superuser. Types are followed through arrays, domains, ranges and
-- composites; defaults through the functions, operators and types they use.
CREATE FUNCTION causal.code_before_trigger(relation regclass) RETURNS TABLE (what text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH RECURSIVE types(oid) AS (
      SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped
    UNION
      SELECT n.next FROM types JOIN pg_type t ON t.oid = types.oid
        CROSS JOIN LATERAL (SELECT t.typbasetype WHERE t.typtype = 'd'
                            UNION ALL SELECT t.typelem WHERE t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc
                            UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid
                            UNION ALL SELECT a.atttypid FROM pg_attribute a
                             WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) n(next)
  ), defaults AS (
    SELECT d.refclassid, d.refobjid FROM pg_attrdef ad
      JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attgenerated = ''
      JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
     WHERE ad.adrelid = relation
  )
  SELECT format('type %s', t.oid::regtype) FROM types JOIN pg_type t ON t.oid = types.oid
    JOIN pg_roles o ON o.oid = t.typowner
   WHERE t.typtype IN ('d', 'c') AND NOT o.rolsuper AND t.typrelid IS DISTINCT FROM relation::oid
  UNION ALL
  SELECT format('the default calling %s', p.oid::regprocedure) FROM defaults d
    JOIN pg_proc p ON (d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid)
                   OR (d.refclassid = 'pg_operator'::regclass
                       AND p.oid = (SELECT o.oprcode FROM pg_operator o WHERE o.oid = d.refobjid)::oid)
    JOIN pg_roles o ON o.oid = p.proowner
   WHERE NOT o.rolsuper
  UNION ALL
  SELECT format('the default of type %s', t.oid::regtype) FROM defaults d
    JOIN pg_type t ON d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid
    JOIN pg_roles o ON o.oid = t.typowner
   WHERE t.typtype IN ('d', 'c') AND NOT o.rolsuper
$$;

-- What keeps `relation` from being a message table at all, the first thing
-- found, or no row: its SQLSTATE, the problem and a hint. For enable(),
-- before it changes anything, and for causal.message_table_problem().
CREATE FUNCTION causal.unfit_table(relation regclass, OUT sqlstate text, OUT problem text, OUT hint text)
RETURNS SETOF record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel pg_class;
  ours constant oid[] := causal.trigger_functions();
  foreign_trigger name;
BEGIN
  SELECT * INTO rel FROM pg_class c WHERE c.oid = relation;
  -- Triggers that fire in the replication apply worker run as a superuser.
  SELECT t.tgname INTO foreign_trigger FROM pg_trigger t
   WHERE t.tgrelid = relation AND NOT t.tgisinternal AND t.tgenabled IN ('A', 'R') AND t.tgfoid <> ALL (ours)
   ORDER BY t.tgname LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT '42501', format('trigger %I would fire on rows replicated from other regions', foreign_trigger),
      'The replication apply worker runs as a superuser: a trigger enabled ALWAYS or REPLICA would run the table owner''s code with its rights. Enable it for local writes only (ENABLE TRIGGER), or LISTEN (causal.enable(..., notify => true)).';
  ELSIF rel.relpersistence <> 'p' THEN
    RETURN QUERY SELECT '42P16', 'it must be a permanent table: logical replication carries no other',
      'ALTER TABLE ... SET LOGGED.';
  ELSIF rel.relispartition OR EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = relation OR i.inhparent = relation) THEN
    RETURN QUERY SELECT '42P16', 'it must have no inheritance parents, children or partitions',
      'Rows written to a child do not pass the parent''s triggers: they would reach every region unstamped.';
  ELSIF EXISTS (SELECT FROM causal.code_before_trigger(relation)) THEN
    RETURN QUERY SELECT '42501',
      format('%s would run on rows replicated from other regions',
             (SELECT string_agg(what, ', ') FROM causal.code_before_trigger(relation))),
      'The replication apply worker turns replicated values into a row, and fills in columns the sender lacks, as a superuser and before any trigger: a domain or default of a role that is not a superuser would run its code with those rights. Use types and functions a superuser owns.';
  ELSIF EXISTS (SELECT FROM pg_index i
                 WHERE i.indrelid = relation AND i.indisunique
                   AND NOT coalesce((SELECT a.attnum FROM pg_attribute a
                                      WHERE a.attrelid = relation AND a.attname = 'msg_id') = ANY (i.indkey::int2[]),
                                    false)) THEN
    RETURN QUERY SELECT '42P16',
      format('unique index %s does not include msg_id',
             (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i
               WHERE i.indrelid = relation AND i.indisunique
                 AND NOT coalesce((SELECT a.attnum FROM pg_attribute a
                                    WHERE a.attrelid = relation AND a.attname = 'msg_id') = ANY (i.indkey::int2[]),
                                  false))),
      'Rows written in different regions would collide on it when they replicate. Drop it, or add msg_id to its columns.';
  END IF;
END $$;

-- What keeps `message_table` from being the message table causal.enable()
-- makes, the first thing found, or no row: its SQLSTATE, the problem and a
-- hint. The one definition of a well-formed message table, for the DDL
-- guard, causalctl verify and enable() itself.
CREATE FUNCTION causal.message_table_problem(message_table regclass, conversation name,
                                             OUT sqlstate text, OUT problem text, OUT hint text)
RETURNS SETOF record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel pg_class;
  ours constant oid[] := causal.trigger_functions();
  col record;
  found_type regtype;
  identity regclass;
BEGIN
  SELECT * INTO rel FROM pg_class c WHERE c.oid = message_table;
  -- pg_causal's three triggers, each with its own function, enabled ALWAYS
  IF (SELECT count(*) FROM pg_trigger t
       WHERE t.tgrelid = message_table AND t.tgenabled = 'A'
         AND (t.tgname, t.tgfoid) IN (('causal_message', ours[1]), ('causal_message_stored', ours[2]),
                                      ('causal_message_truncate', ours[3]))) <> 3 THEN
    RETURN QUERY SELECT '42501', 'pg_causal''s triggers must stay on it, enabled ALWAYS',
      'Only a superuser can change them; causal.disable() (for causal_admin) turns a message table back into an ordinary table.';
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM causal.unfit_table(message_table);
  IF FOUND THEN
    RETURN;
  END IF;
  FOR col IN SELECT c.name, c.type FROM causal.message_columns() c
             UNION ALL SELECT conversation, NULL LOOP
    SELECT a.atttypid::regtype INTO found_type FROM pg_attribute a
     WHERE a.attrelid = message_table AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RETURN QUERY SELECT '42P16', format('it must keep its column %I', col.name),
        'pg_causal''s columns, and the conversation column, stay as causal.enable() made them.';
      RETURN;
    ELSIF found_type <> col.type THEN
      RETURN QUERY SELECT '42P16', format('column %I must keep type %s, not %s', col.name, col.type, found_type),
        'pg_causal''s columns, and the conversation column, stay as causal.enable() made them.';
      RETURN;
    END IF;
  END LOOP;
  SELECT i.indexrelid::regclass INTO identity FROM pg_index i WHERE i.indrelid = message_table AND i.indisreplident;
  IF rel.relreplident <> 'i' OR identity IS DISTINCT FROM causal.index_on(message_table, ARRAY['msg_id']::name[], true) THEN
    RETURN QUERY SELECT '42P16', 'its replica identity must stay the unique index on msg_id',
      'Every region finds a message by its msg_id.';
    RETURN;
  END IF;
END $$;

-- Every causal message table of this database: a plain table carrying one
-- of pg_causal's trigger functions, with its conversation column (the
-- causal_message trigger's argument) and, when it is no longer what enable()
-- made, the first problem (causal.message_table_problem).
CREATE FUNCTION causal.message_tables(OUT relid regclass, OUT conversation name, OUT notify boolean,
                                      OUT sqlstate text, OUT problem text, OUT hint text)
RETURNS SETOF record LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT m.relid, convert_from(m.first, current_setting('server_encoding'))::name,
         coalesce(substring(m.rest FROM 1 FOR position(decode('00', 'hex') IN m.rest) - 1) = 'notify'::bytea, false),
         p.sqlstate, p.problem, p.hint
    FROM (SELECT c.oid::regclass AS relid,
                 -- the causal_message trigger's arguments: NUL-terminated
                 -- bytes, conversation then 'notify' or 'quiet'
                 substring(t.tgargs FROM 1 FOR position(decode('00', 'hex') IN t.tgargs) - 1) AS first,
                 substring(t.tgargs FROM position(decode('00', 'hex') IN t.tgargs) + 1) AS rest
            FROM (SELECT DISTINCT t.tgrelid FROM pg_trigger t WHERE t.tgfoid = ANY (causal.trigger_functions())) ours
            JOIN pg_class c ON c.oid = ours.tgrelid AND c.relkind = 'r'
            LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'causal_message'
                                  AND t.tgfoid = 'causal.message_trigger()'::regprocedure) m
    LEFT JOIN LATERAL (SELECT * FROM causal.message_table_problem(m.relid,
                         convert_from(m.first, current_setting('server_encoding'))::name) LIMIT 1) p ON true
   ORDER BY m.relid::text
$$;
COMMENT ON FUNCTION causal.message_tables() IS
    'every causal message table of this database, and what is wrong with it, if anything';

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

-- The mesh's publications, made or mended, the one place that knows them:
--  * causal_mesh: pg_causal's own tables, INSERT and UPDATE. Regions and
--    fences go everywhere by every path; heartbeats only this region's own
--    (a heartbeat relayed by another region would move this region's peers'
--    stable point past messages that did not come with it).
--  * causal_messages: every message table, INSERT only, the rows this
--    region's own writes made (coalesce(written_by, crdb_region): a local
--    insert, or a tombstone of its DELETE): each message is decoded and sent
--    once per peer. A region that cannot hear a writer directly pulls its rows
--    from a peer that can (relay.cpp). Updates need not travel: a local one
--    changes nothing, and the apply path's (another copy joining a row) are
--    what each region does itself when that copy reaches it.
--  * causal_copy: the message tables again, publishing nothing: it is there
--    for a subscription's first copy, which then takes every row the peer
--    holds, whoever wrote it (a joining region copies what regions that are
--    gone wrote too).
-- Refuses one that a role other than a superuser owns, or that publishes
-- all tables: that owner decides what the mesh replicates, and DELETE or
-- TRUNCATE would wipe every region. A deletion travels as its tombstone,
-- an INSERT.
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

CREATE FUNCTION causal.enable(
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

-- Undoes enable() without touching the data: the triggers go and the table
-- leaves the publication; columns, indexes and rows stay.
CREATE FUNCTION causal.disable(message_table regclass) RETURNS regclass
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

-- Turning tables into message tables and back is for causal_admin: enable()
-- runs with pg_causal's rights (it adds to causal_mesh, which a superuser
-- owns) and makes every change to the table as its owner.
REVOKE ALL ON FUNCTION causal.enable(regclass, name, boolean, name, name), causal.disable(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION causal.enable(regclass, name, boolean, name, name), causal.disable(regclass) TO causal_admin;

SELECT pg_catalog.pg_extension_config_dump('causal.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('causal.quarantine_id_seq', '');
-- The causal merge: rows from any number of regions in, one history out, the
-- same in every region. causal.merge() is an aggregate whose value is the
-- whole history; causal.unnest() turns it back into rows.

CREATE TYPE causal.merged AS (
    position    bigint,
    msg_id      uuid,
    hlc         causal.hlc,
    delivered   boolean,   -- every dep is here and delivered
    concurrent  boolean,   -- no causal path to or from the message before it
    orphan      boolean    -- a fenced region's write, or a descendant of one
);
COMMENT ON TYPE causal.merged IS 'one message of a merged, causally ordered history';

CREATE FUNCTION causal.merge_transition(internal, uuid, causal.hlc, causal.hlc[], text, bigint)
    RETURNS internal AS 'MODULE_PATHNAME', 'merge_transition' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION causal.merge_transition(internal, uuid, causal.hlc, causal.hlc[], text, bigint, causal.copy[])
    RETURNS internal AS 'MODULE_PATHNAME', 'merge_transition' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION causal.merge_combine(internal, internal)
    RETURNS internal AS 'MODULE_PATHNAME', 'merge_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION causal.merge_serialize(internal)
    RETURNS bytea AS 'MODULE_PATHNAME', 'merge_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION causal.merge_deserialize(bytea, internal)
    RETURNS internal AS 'MODULE_PATHNAME', 'merge_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
-- Reads causal.fences (for orphans), so STABLE rather than IMMUTABLE.
CREATE FUNCTION causal.merge_final(internal)
    RETURNS causal.merged[] AS 'MODULE_PATHNAME', 'merge_final' LANGUAGE C STABLE PARALLEL SAFE;

CREATE AGGREGATE causal.merge(msg_id uuid, hlc causal.hlc, deps causal.hlc[], region text, epoch bigint) (
    SFUNC = causal.merge_transition,
    STYPE = internal,
    FINALFUNC = causal.merge_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = causal.merge_combine,
    SERIALFUNC = causal.merge_serialize,
    DESERIALFUNC = causal.merge_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE causal.merge(uuid, causal.hlc, causal.hlc[], text, bigint) IS
    'one deterministic, duplicate-free, causally ordered history of the messages given';

-- The same over a message table's rows with their other copies (the
-- `copies` column): every hlc a message was given names it, and the copy
-- presented is the one an active region wrote (src/core/copies.hpp).
CREATE AGGREGATE causal.merge(msg_id uuid, hlc causal.hlc, deps causal.hlc[], region text, epoch bigint,
                              copies causal.copy[]) (
    SFUNC = causal.merge_transition,
    STYPE = internal,
    FINALFUNC = causal.merge_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = causal.merge_combine,
    SERIALFUNC = causal.merge_serialize,
    DESERIALFUNC = causal.merge_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE causal.merge(uuid, causal.hlc, causal.hlc[], text, bigint, causal.copy[]) IS
    'one deterministic, duplicate-free, causally ordered history of the messages and all their copies';

-- Inlined by the planner (a plain SQL set-returning function): as fast as
-- unnest itself.
CREATE FUNCTION causal.unnest(history causal.merged[]) RETURNS SETOF causal.merged
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT * FROM pg_catalog.unnest(history)';
COMMENT ON FUNCTION causal.unnest(causal.merged[]) IS 'the rows of a merged history, in order';

-- For a client that comes back, maybe to another region: what it has not
-- seen of `conversation`, in causal order. Raises 5C003 when this region has
-- not yet received everything `seen` names, after waiting up to `wait_for`.
-- With `since`, a cursor the client took with causal.stable_hlc() before it
-- read, it saw every message with a copy below it too, and only what lies
-- at or after it is read.
CREATE FUNCTION causal.catch_up(message_table regclass, conversation text, seen causal.hlc[],
                                wait_for interval DEFAULT '0', since causal.hlc DEFAULT NULL)
    RETURNS SETOF causal.merged AS 'MODULE_PATHNAME', 'catch_up' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.catch_up(regclass, text, causal.hlc[], interval, causal.hlc) IS
    'what a client that saw `seen` (and everything below `since`) has missed of a conversation, or 5C003 while this region is behind';

-- A conversation as a client opens it: the delivered messages, every column,
-- in the merged order (catch_up's order, without the held ones). Pass the
-- table as NULL::schema.table. Not STRICT: that NULL is the argument.
CREATE FUNCTION causal.history(message_table anyelement, conversation text)
    RETURNS SETOF anyelement AS 'MODULE_PATHNAME', 'conversation_history' LANGUAGE C STABLE;
COMMENT ON FUNCTION causal.history(anyelement, text) IS
    'a conversation''s delivered messages, whole rows, in causal order: history(NULL::table, conversation)';
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
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
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
  -- the mesh's slots here are this region's, one per subscriber
  -- (causal_<region>_to_<peer>): no need to spell the region's name
  prefix text := 'causal_';
  deadline timestamptz := clock_timestamp() + timeout;
  confirmed int;
BEGIN
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'causal.await_replicated() waits for committed writes: call it after COMMIT'
      USING ERRCODE = '25000';
  END IF;
  IF regions < 1 OR regions > (SELECT count(*) FROM pg_replication_slots WHERE starts_with(slot_name, prefix)) THEN
    RAISE EXCEPTION 'regions must be between 1 and the number of regions subscribed to this one'
      USING ERRCODE = '22023';
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
-- The DDL guard (extension/ddl_guard.cpp): at the end of every command that
-- can change a table, a role that is not a superuser must have left the
-- message tables it owns as causal.enable() made them
-- (causal.message_table_problem); and DROP EXTENSION pg_causal CASCADE
-- refuses while message tables exist, unless causal.allow_drop_extension.
CREATE FUNCTION causal.guard_ddl() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'guard_ddl' LANGUAGE C;
REVOKE ALL ON FUNCTION causal.guard_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER causal_guard_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
                 'CREATE INDEX', 'DROP INDEX', 'ALTER INDEX')
    EXECUTE FUNCTION causal.guard_ddl();
CREATE EVENT TRIGGER causal_guard_drop_extension ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION causal.guard_ddl();
-- Also with session_replication_role = replica: pg_causal stores replicated
-- rows, and stamps the rows from before enable(), as the table's owner in
-- that mode, and the owner's code (a CHECK constraint) could make DDL then.
ALTER EVENT TRIGGER causal_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER causal_guard_drop_extension ENABLE ALWAYS;

