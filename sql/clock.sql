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
