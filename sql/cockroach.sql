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
