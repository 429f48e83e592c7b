-- Helpers shared by the pgTAP files, loaded once into the test database by
-- regress/run-tests (pg_prove runs each file in a session of its own).
CREATE SCHEMA tap_helpers;

-- The EXPLAIN (COSTS OFF) text of a query, to match plan shapes against.
CREATE FUNCTION tap_helpers.plan_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    result := result || line || E'\n';
  END LOOP;
  RETURN result;
END $$;

-- The error a statement raises, with its detail and hint (all NULL if none).
CREATE FUNCTION tap_helpers.error_of(query text, OUT state text, OUT message text, OUT detail text,
                                     OUT hint text) LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE query;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;
