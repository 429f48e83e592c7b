-- Bad input: a clear message and the right SQLSTATE, never a clamp.
SET search_path = public, causal;
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never

-- 22P02: not of the canonical shape
SELECT ''::causal.hlc;
SELECT 'garbage'::causal.hlc;
SELECT '1732590000123'::causal.hlc;
SELECT '1732590000123.42@7'::causal.hlc;
SELECT '1732590000123.000042@7'::causal.hlc;
SELECT '1732590000123.00042'::causal.hlc;
SELECT '1732590000123.00042@'::causal.hlc;
SELECT '-1732590000123.00042@7'::causal.hlc;
SELECT '+1732590000123.00042@7'::causal.hlc;
SELECT '1732590000123.00042@-7'::causal.hlc;
SELECT '1732590000123 .00042@7'::causal.hlc;
SELECT '1732590000123.00042@7x'::causal.hlc;
SELECT '1732590000123.00042@7@8'::causal.hlc;

-- 22003: a part out of range
SELECT '281474976710656.00000@1'::causal.hlc;
SELECT '99999999999999999999999999999.00000@1'::causal.hlc;
SELECT '1.65536@1'::causal.hlc;
SELECT '1.99999@1'::causal.hlc;
SELECT '1.00000@65536'::causal.hlc;
SELECT causal.hlc_from_parts(-1, 0, 0);
SELECT causal.hlc_from_parts(281474976710656, 0, 0);
SELECT causal.hlc_from_parts(0, -1, 0);
SELECT causal.hlc_from_parts(0, 65536, 0);
SELECT causal.hlc_from_parts(0, 0, -1);
SELECT causal.hlc_from_parts(0, 0, 65536);

-- NULLs in, NULL out
SELECT causal.hlc_from_parts(NULL, 0, 0) IS NULL AS null_part;
SELECT causal.hlc_physical_ms(NULL) IS NULL AS null_hlc;

-- the messages themselves
\set VERBOSITY default
SELECT 'garbage'::causal.hlc;
SELECT '1.99999@1'::causal.hlc;
SELECT causal.hlc_from_parts(281474976710656, 0, 0);
SELECT causal.hlc_from_parts(0, 0, 70000);
