-- Judges what the restart scenarios recorded: each phase's first timestamp
-- after a restart is above everything issued before it, and the clock
-- stands where the phase expects it.
SET search_path = public, causal;
SELECT plan((SELECT count(*)::int * 2 FROM before_restart) + 1
            + (SELECT count(DISTINCT phase)::int FROM issued WHERE phase IN (SELECT phase FROM before_restart)));

CREATE FUNCTION pg_temp.holds(phase text, expectation text) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  EXECUTE format('SELECT %s FROM after_restart WHERE phase = %L', expectation, phase) INTO result;
  RETURN coalesce(result, false);
END $$;

SELECT is((SELECT count(*) FROM before_restart b LEFT JOIN after_restart a USING (phase)
            WHERE a.phase IS NULL), 0::bigint, 'every phase came back');
SELECT cmp_ok(a.first_issued, '>', b.last_issued,
              format('%s: the first timestamp after the restart is above the last before it', b.phase))
  FROM before_restart b JOIN after_restart a USING (phase) ORDER BY b.phase;
SELECT cmp_ok(a.first_issued, '>', i.last,
              format('%s: the first timestamp after the restart is above each of the %s the load committed',
                     a.phase, i.committed))
  FROM after_restart a
  JOIN (SELECT phase, max(h) AS last, count(*) AS committed FROM issued GROUP BY phase) i USING (phase)
 ORDER BY a.phase;
SELECT ok(pg_temp.holds(b.phase, b.expectation), format('%s: %s (%s)', b.phase, b.why, b.expectation))
  FROM before_restart b ORDER BY b.phase;
SELECT * FROM finish();
