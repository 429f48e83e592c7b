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
-- Deprecated (a WARNING once per query), and gone in the next version: it
-- does not see copies, so it strands the replies to a retried message, and
-- it differs from the form below by a trailing argument only, an overload
-- PostgreSQL avoids for aggregates (where ORDER BY goes can pick the wrong
-- one).
COMMENT ON AGGREGATE causal.merge(uuid, causal.hlc, causal.hlc[], text, bigint) IS
    'deprecated, goes in the next version: the six-argument form, with copies, is the one to use';

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
--
-- Each row says whether the message is deleted. With a cursor, what was
-- deleted at or after it follows the missed messages: a row with `deleted`
-- true and no position (NULL delivered, concurrent and orphan) for each
-- message the client may hold that was deleted since, by deletion time.
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

CREATE FUNCTION causal.catch_up(message_table regclass, conversation text, seen causal.hlc[],
                                wait_for interval DEFAULT '0', since causal.hlc DEFAULT NULL)
    RETURNS SETOF causal.caught_up AS 'MODULE_PATHNAME', 'catch_up' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION causal.catch_up(regclass, text, causal.hlc[], interval, causal.hlc) IS
    'what a client that saw `seen` (and everything below `since`) has missed of a conversation, or 5C003 while this region is behind';

-- A conversation as a client opens it: the delivered messages, every column,
-- in the merged order (catch_up's order, without the held ones). Pass the
-- table as NULL::schema.table. Not STRICT: that NULL is the argument.
CREATE FUNCTION causal.history(message_table anyelement, conversation text)
    RETURNS SETOF anyelement AS 'MODULE_PATHNAME', 'conversation_history' LANGUAGE C STABLE;
COMMENT ON FUNCTION causal.history(anyelement, text) IS
    'a conversation''s delivered messages, whole rows, in causal order: history(NULL::table, conversation)';
