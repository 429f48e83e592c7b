-- pg_causal's catalog, checked the way PostgreSQL checks its own
-- (src/test/regress/sql/opr_sanity.sql, type_sanity.sql): what the
-- extension declares agrees with itself, and what PUBLIC may run is a
-- list someone chose.
BEGIN;
SELECT plan(14);

CREATE TEMPORARY VIEW ours AS
SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE e.extname = 'pg_causal' AND d.deptype = 'e';
CREATE TEMPORARY VIEW our_functions AS
SELECT p.* FROM pg_proc p JOIN ours o ON o.classid = 'pg_proc'::regclass AND o.objid = p.oid;
CREATE TEMPORARY VIEW our_operators AS
SELECT op.* FROM pg_operator op JOIN ours o ON o.classid = 'pg_operator'::regclass AND o.objid = op.oid;

-- Functions
SELECT is_empty($$SELECT oid::regprocedure FROM our_functions
                   WHERE prosecdef AND NOT EXISTS (SELECT FROM unnest(proconfig) c WHERE c LIKE 'search_path=%')$$,
                'every SECURITY DEFINER function pins its search_path');
SELECT is_empty($$SELECT oid::regprocedure FROM our_functions WHERE provolatile = 'i' AND proparallel <> 's'$$,
                'every IMMUTABLE function is PARALLEL SAFE');
SELECT is_empty($$SELECT oid::regprocedure FROM our_functions
                   WHERE prorettype = 'trigger'::regtype
                     AND has_function_privilege('public', oid, 'EXECUTE')$$,
                'PUBLIC may execute no trigger function (whoever may could put it on a table of its own)');
SELECT is_empty($$SELECT oid::regprocedure FROM our_functions, unnest(proconfig) c
                   WHERE c LIKE 'search_path=%' AND c <> 'search_path=pg_catalog, pg_temp'$$,
                'a function that sets its search_path sets it to pg_catalog, pg_temp');
-- What any login may run: each one chosen. Adding to it is a decision, and
-- this list is where it is made.
SELECT set_eq(
  $$SELECT oid::regprocedure::text FROM our_functions
     WHERE prokind = 'f' AND has_function_privilege('public', oid, 'EXECUTE')$$,
  ARRAY[
    -- the hlc type: input, output, parts, operators' functions, index support
    'causal.hlc_in(cstring)', 'causal.hlc_out(causal.hlc)', 'causal.hlc_recv(internal)', 'causal.hlc_send(causal.hlc)',
    'causal.hlc_from_parts(bigint,integer,integer)', 'causal.hlc_physical_ms(causal.hlc)',
    'causal.hlc_logical(causal.hlc)', 'causal.hlc_node(causal.hlc)', 'causal.hlc_to_timestamptz(causal.hlc)',
    'causal.hlc_eq(causal.hlc,causal.hlc)', 'causal.hlc_ne(causal.hlc,causal.hlc)',
    'causal.hlc_lt(causal.hlc,causal.hlc)', 'causal.hlc_le(causal.hlc,causal.hlc)',
    'causal.hlc_gt(causal.hlc,causal.hlc)', 'causal.hlc_ge(causal.hlc,causal.hlc)',
    'causal.hlc_cmp(causal.hlc,causal.hlc)', 'causal.hlc_sortsupport(internal)', 'causal.hlc_hash(causal.hlc)',
    'causal.hlc_hash_extended(causal.hlc,bigint)', 'causal.hlc_smaller(causal.hlc,causal.hlc)',
    'causal.hlc_larger(causal.hlc,causal.hlc)', 'causal.hlc_to_numeric(causal.hlc)',
    -- the clock, as a client stamps and reads it
    'causal.hlc_now()', 'causal.hlc_current()', 'causal.clock_status()', 'causal.cluster_logical_timestamp()',
    'causal.gateway_region()',
    -- reading: the merge, catch-up, history, the cursor
    'causal.merge_transition(internal,uuid,causal.hlc,causal.hlc[],text,bigint)',
    'causal.merge_transition(internal,uuid,causal.hlc,causal.hlc[],text,bigint,causal.copy[])',
    'causal.merge_combine(internal,internal)', 'causal.merge_serialize(internal)',
    'causal.merge_deserialize(bytea,internal)', 'causal.merge_final(internal)', 'causal.unnest(causal.merged[])',
    'causal.catch_up(regclass,text,causal.hlc[],interval,causal.hlc)', 'causal.history(anyelement,text)',
    'causal.local_stable()', 'causal.stable_hlc()', 'causal.is_orphan(text,bigint,causal.hlc)',
    'causal.is_fenced_deletion(text,causal.hlc)',
    'causal.new_msg_id()', 'causal.await_replicated(integer,interval)',
    -- what anyone may know of the mesh and of a table (from catalogs and tables PUBLIC reads)
    'causal.region_for_clients(text)', 'causal.link_name(text,text)', 'causal.liveness()', 'causal.self_fenced()',
    'causal.mesh_view()', 'causal.replication_role_problem()', 'causal.require_newer_epoch(text,bigint,bigint)',
    'causal.table_stats()', 'causal.relay_stats()', 'causal.message_columns()', 'causal.index_on(regclass,name[],boolean)',
    'causal.trigger_functions()', 'causal.unfit_table(regclass)', 'causal.message_table_problem(regclass,name)',
    'causal.message_tables()', 'causal.stamp_index(regclass)', 'causal.held_messages()',
    -- a message table's index expression, which every writer evaluates
    'causal.latest_stamp(causal.hlc,causal.hlc,causal.copy[])'
  ],
  'the functions PUBLIC may execute are the chosen ones');

-- Operators
SELECT is_empty($$SELECT o.oid::regoperator FROM our_operators o JOIN pg_operator c ON c.oid = o.oprcom
                   WHERE c.oprcom <> o.oid OR c.oprleft <> o.oprright OR c.oprright <> o.oprleft$$,
                'each commutator names the operator back, with the operand types swapped');
SELECT is_empty($$SELECT o.oid::regoperator FROM our_operators o JOIN pg_operator n ON n.oid = o.oprnegate
                   WHERE n.oprnegate <> o.oid OR n.oprleft <> o.oprleft OR n.oprright <> o.oprright
                      OR o.oprresult <> 'boolean'::regtype$$,
                'each negator names the operator back, over the same types, both boolean');
SELECT is_empty($$SELECT oid::regoperator FROM our_operators
                   WHERE oprresult = 'boolean'::regtype AND (oprrest = 0 OR oprjoin = 0)$$,
                'every boolean operator has selectivity estimators');
SELECT is_empty($$SELECT o.oid::regoperator FROM our_operators o JOIN pg_proc p ON p.oid = o.oprcode
                   WHERE p.provolatile <> 'i' OR NOT p.proisstrict$$,
                'every operator''s function is IMMUTABLE and STRICT, as an index needs');

-- Operator classes
SELECT set_eq($$SELECT a.amopstrategy::int FROM pg_amop a JOIN pg_opclass c ON c.opcfamily = a.amopfamily
                 WHERE c.opcname = 'hlc_ops' AND c.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'btree')$$,
              ARRAY[1, 2, 3, 4, 5], 'the btree class of causal.hlc has all five strategies');
SELECT set_eq($$SELECT p.amprocnum::int FROM pg_amproc p JOIN pg_opclass c ON c.opcfamily = p.amprocfamily
                 WHERE c.opcname = 'hlc_ops' AND c.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'btree')$$,
              ARRAY[1, 2, 4], '... its comparison, its sort support, and equalimage (deduplication)');

-- Aggregates and casts
SELECT is_empty($$SELECT a.aggfnoid::regprocedure FROM pg_aggregate a JOIN our_functions p ON p.oid = a.aggfnoid
                   WHERE p.proparallel = 's' AND a.aggtranstype = 'internal'::regtype
                     AND (a.aggcombinefn = 0 OR a.aggserialfn = 0 OR a.aggdeserialfn = 0)$$,
                'every PARALLEL SAFE aggregate with an internal state can be combined, serialized and deserialized');
SELECT is_empty($$SELECT c.castsource::regtype || ' -> ' || c.casttarget::regtype
                    FROM pg_cast c JOIN ours o ON o.classid = 'pg_cast'::regclass AND o.objid = c.oid
                    JOIN pg_proc p ON p.oid = c.castfunc WHERE p.provolatile <> 'i'$$,
                'every cast of pg_causal is IMMUTABLE');

-- Event triggers
SELECT is_empty($$SELECT t.evtname FROM pg_event_trigger t JOIN ours o ON o.classid = 'pg_event_trigger'::regclass
                    AND o.objid = t.oid WHERE t.evtenabled <> 'A'$$,
                'every event trigger of pg_causal is ENABLE ALWAYS (replica-mode sessions too)');

SELECT * FROM finish();
ROLLBACK;
