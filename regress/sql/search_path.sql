-- A query over hlc values needs nothing of schema causal on its search_path:
-- the comparison operators and min/max are pg_catalog's, as the built-in
-- types' are, and a schema earlier on the path cannot replace them.
SET search_path = public;
CREATE TABLE public.cursor_test (id int, h causal.hlc);
INSERT INTO public.cursor_test
SELECT i, causal.hlc_from_parts(1700000000000 + i, 0, 1) FROM generate_series(1, 5) i;

SELECT id FROM cursor_test WHERE h > '1700000000003.00000@1' ORDER BY h;
SELECT count(*) FROM cursor_test WHERE h < causal.hlc_now();
SELECT count(*) FROM cursor_test a JOIN cursor_test b USING (h);
SELECT min(h), max(h) FROM cursor_test;
SELECT id FROM cursor_test WHERE h <> '1700000000001.00000@1' AND h <= '1700000000003.00000@1' ORDER BY h DESC;
SELECT DISTINCT h >= '1700000000005.00000@1' AS at_or_after FROM cursor_test ORDER BY 1;

-- where the operators and aggregates live
SELECT o.oprname, o.oprnamespace::regnamespace FROM pg_operator o
 WHERE o.oprleft = 'causal.hlc'::regtype AND o.oprright = 'causal.hlc'::regtype ORDER BY o.oprname;
SELECT p.proname, p.pronamespace::regnamespace FROM pg_proc p
 WHERE p.prokind = 'a' AND p.pronargs = 1 AND p.proargtypes[0] = 'causal.hlc'::regtype ORDER BY p.proname;

-- A schema first on the path with an `=` of its own that says yes to
-- everything: pg_catalog is searched first, so the query keeps pg_causal's.
CREATE SCHEMA hijack;
CREATE FUNCTION hijack.always(causal.hlc, causal.hlc) RETURNS bool LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hijack.= (LEFTARG = causal.hlc, RIGHTARG = causal.hlc, FUNCTION = hijack.always);
SET search_path = hijack, public;
SELECT count(*) AS matches FROM cursor_test WHERE h = '1700000000002.00000@1';
-- only a path that names pg_catalog after it lets it win, as for built-in types
SET search_path = hijack, pg_catalog, public;
SELECT count(*) AS matches FROM cursor_test WHERE h = '1700000000002.00000@1';

RESET search_path;
DROP SCHEMA hijack CASCADE;
DROP TABLE public.cursor_test;
