-- The instance clock. Values change from run to run, so this file checks
-- properties; behaviour under load and restarts lives in regress/pgtap.
SET search_path = public, causal;

SELECT current_setting('causal.node_id') AS node_id,
       current_setting('causal.max_clock_offset') AS max_clock_offset;

-- strictly increasing within a statement and across statements
SELECT bool_and(a < b) AS increasing, count(*)
  FROM (SELECT h AS a, lead(h) OVER (ORDER BY g) AS b
          FROM (SELECT g, hlc_now() h FROM generate_series(1, 10000) g) s) t
 WHERE b IS NOT NULL;
SELECT hlc_now() AS before \gset
SELECT hlc_now() > :'before' AS later;

-- stamped with this node's id, close to the wall clock
SELECT hlc_node(hlc_now()) = current_setting('causal.node_id')::int AS own_node,
       abs(hlc_physical_ms(hlc_now()) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint) < 1000
           AS near_wall_clock;

-- hlc_current() reads without ticking
SELECT hlc_now() AS issued \gset
SELECT hlc_current() = :'issued' AS current_is_last, hlc_current() = hlc_current() AS no_tick;

-- receive event: adopts a remote value within the max offset
SELECT hlc_from_parts(hlc_physical_ms(hlc_now()) + 200, 7, 9) AS remote \gset
SELECT hlc_observe(:'remote') > :'remote' AS above_remote,
       hlc_physical_ms(hlc_observe(:'remote')) >= hlc_physical_ms(:'remote') AS adopted,
       hlc_now() > :'remote' AS later_events_too;
-- a remote value from the past changes nothing but still ticks
SELECT hlc_now() AS last \gset
SELECT hlc_observe('1.00000@9') > :'last' AS ticks;

-- a remote value further ahead than causal.max_clock_offset is not adopted:
-- a WARNING, a counted rejection, and the clock stays near the wall clock
SELECT offset_rejections AS rejections_before FROM clock_status \gset
SELECT hlc_from_parts(hlc_physical_ms(hlc_now()) + 60000, 0, 9) AS far \gset
SET client_min_messages = error;  -- the WARNING names values that change per run
SELECT hlc_observe(:'far') < :'far' AS not_adopted;
RESET client_min_messages;
SELECT offset_rejections = :rejections_before + 1 AS counted,
       max_remote_lead_ms >= 59000 AS lead_recorded,
       ahead_of_physical_ms < 1000 AS clock_not_dragged
  FROM clock_status;

-- clock_status
SELECT current = hlc_current() AS current, node_id, region IS NOT NULL AS has_region,
       abs(extract(epoch FROM physical_clock - clock_timestamp())) < 1 AS physical_now,
       persisted_ceiling > physical_clock AS ceiling_ahead, max_clock_offset_ms
  FROM clock_status;
SELECT has_table_privilege('public', 'causal.clock_status', 'SELECT') AS public_can_read;

-- the settings are server-wide (postgresql.conf or ALTER SYSTEM, then a
-- reload), not per session, and validated
SET causal.node_id = 3;
SET causal.max_clock_offset = '10ms';
ALTER SYSTEM SET causal.node_id = 70000;
ALTER SYSTEM SET causal.max_clock_offset = -1;
SET causal.nonexistent = 1;
