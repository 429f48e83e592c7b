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
