-- COPY BINARY round trips; a binary value of the wrong length is refused.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SELECT plan(7);

CREATE TEMP TABLE original AS
  SELECT g AS id, causal.hlc_from_parts(1700000000000 + g * 13, g % 65536, g % 65536) AS h,
         ARRAY[causal.hlc_from_parts(g, 0, 1), causal.hlc_from_parts(g, 1, 2)] AS deps
    FROM generate_series(0, 9999) g
  UNION ALL SELECT -1, causal.hlc_from_parts(281474976710655, 65535, 65535), '{}'
  UNION ALL SELECT -2, NULL, NULL;
CREATE TEMP TABLE copied (LIKE original);
CREATE TEMP TABLE bad_lengths (b bytea);

CREATE FUNCTION pg_temp.copy_file(name text) RETURNS text LANGUAGE sql AS
  $$ SELECT current_setting('data_directory') || '/causal_tap_' || name || '.bin' $$;

SELECT lives_ok(format('COPY original TO %L (FORMAT binary)', pg_temp.copy_file('hlc')),
                'COPY TO (FORMAT binary)');
SELECT lives_ok(format('COPY copied FROM %L (FORMAT binary)', pg_temp.copy_file('hlc')),
                'COPY FROM (FORMAT binary)');
SELECT set_eq('SELECT id, h::text, deps::text FROM copied', 'SELECT id, h::text, deps::text FROM original',
              'every value, array and NULL comes back exactly');

-- a field of 9 or 11 bytes where an hlc needs 10
INSERT INTO bad_lengths VALUES ('\x000102030405060708');
SELECT lives_ok(format('COPY bad_lengths TO %L (FORMAT binary)', pg_temp.copy_file('short')), 'write a 9-byte field');
CREATE TEMP TABLE target (h causal.hlc);
SELECT throws_ok(format('COPY target FROM %L (FORMAT binary)', pg_temp.copy_file('short')),
                 '22P03', 'invalid binary hlc: expected 10 bytes, got 9', 'a short binary hlc is refused');
UPDATE bad_lengths SET b = '\x0001020304050607080900';
SELECT lives_ok(format('COPY bad_lengths TO %L (FORMAT binary)', pg_temp.copy_file('long')), 'write an 11-byte field');
SELECT throws_ok(format('COPY target FROM %L (FORMAT binary)', pg_temp.copy_file('long')),
                 '22P03', 'invalid binary hlc: expected 10 bytes, got 11', 'a long binary hlc is refused');

SELECT * FROM finish();
ROLLBACK;
