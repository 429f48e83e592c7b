-- The causal.hlc type: text and binary forms, parts, casts, arrays.
CREATE EXTENSION pg_causal;
SET search_path = public, causal;

-- every function lives in schema causal but the min and max aggregates,
-- which are pg_catalog's, as the comparison operators are (search_path.sql)
SELECT n.nspname, string_agg(DISTINCT CASE WHEN n.nspname = 'pg_catalog' THEN p.proname END, ', ') AS functions,
       count(*) > 0 AS has_objects
  FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_causal')
 GROUP BY n.nspname ORDER BY n.nspname;

-- canonical text form: <physical_ms>.<logical, 5 digits>@<node>
SELECT '1732590000123.00042@7'::hlc;
SELECT '0.00000@0'::hlc, '281474976710655.65535@65535'::hlc;
SELECT '  1732590000123.00042@7  '::hlc AS blanks_around;
-- one value, one text: leading zeros are refused
SELECT '0001732590000123.00042@7'::hlc;
SELECT '1732590000123.00042@007'::hlc;

-- parts
SELECT hlc_from_parts(1732590000123, 42, 7);
SELECT hlc_physical_ms(h), hlc_logical(h), hlc_node(h)
  FROM (VALUES ('1732590000123.00042@7'::hlc)) v(h);
SELECT hlc_from_parts(281474976710655, 65535, 65535) = '281474976710655.65535@65535'::hlc AS max_value;

-- text round trip
SELECT h::text::hlc = h AS round_trip
  FROM (SELECT hlc_from_parts(1700000000000 + g * 7919, g % 65536, g % 3) h
          FROM generate_series(0, 999) g) s
 GROUP BY 1;

-- binary form: 8 bytes of (physical << 16 | logical), 2 bytes of node, network
-- order (COPY BINARY round trips are in regress/pgtap)
SELECT encode(hlc_send('1732590000123.00042@7'), 'hex');

-- casts
SELECT '1732590000123.00042@7'::hlc::timestamptz AT TIME ZONE 'UTC' AS utc;
SELECT '1732590000123.00042@7'::hlc::numeric;
SELECT '0.00005@1'::hlc::numeric;
SELECT '281474976710655.65535@65535'::hlc::numeric AS max_numeric;
SELECT '281474976710655.65535@65535'::hlc::timestamptz AT TIME ZONE 'UTC' AS max_timestamptz;

-- arrays
SELECT ARRAY['1.00001@1', '1.00000@2']::hlc[];
SELECT (ARRAY['1.00001@1', '1.00000@2']::hlc[])[2];
SELECT array_agg(h ORDER BY h)
  FROM unnest(ARRAY['3.00000@1', '1.00000@9', '1.00000@2']::hlc[]) h;
SELECT '{"1.00001@1","2.00000@2"}'::hlc[] @> ARRAY['2.00000@2'::hlc] AS contains;

-- storage: fixed 16 bytes, aligned like a double
SELECT typlen, typalign, typbyval, typstorage FROM pg_type WHERE oid = 'causal.hlc'::regtype;
SELECT pg_column_size('1732590000123.00042@7'::hlc);
