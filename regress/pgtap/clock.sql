-- The clock's behaviour that one session can see: overflow waits, the
-- max-offset guard never raises, privileges.
BEGIN;
-- operators live in schema causal, like every object of the extension
SET LOCAL search_path = public, causal;
SELECT plan(9);

-- A remote value 100 ms ahead with a full logical counter: adopting it needs
-- logical 65536. The clock is then ahead of the wall clock, where waiting
-- would stall every writer for the whole lead, so it carries into the next
-- millisecond, with a fresh counter, at once.
SELECT causal.hlc_from_parts((extract(epoch FROM clock_timestamp()) * 1000)::bigint + 100, 65535, 9)
    AS full_counter \gset
SELECT causal.hlc_observe(:'full_counter') AS after_overflow \gset
SELECT cmp_ok(:'after_overflow'::causal.hlc, '>', :'full_counter'::causal.hlc, 'overflow never wraps below the remote value');
SELECT is(causal.hlc_physical_ms(:'after_overflow'), causal.hlc_physical_ms(:'full_counter') + 1,
          'the counter carries into the next millisecond');
SELECT is(causal.hlc_logical(:'after_overflow'), 0, 'with a fresh logical counter');
SELECT cmp_ok((extract(epoch FROM clock_timestamp()) * 1000)::bigint, '<',
              causal.hlc_physical_ms(:'full_counter'), 'without waiting for the wall clock to get there');

-- the guard never raises: the apply path relies on it
SELECT lives_ok($$SET LOCAL client_min_messages = error;
                  SELECT causal.hlc_observe(causal.hlc_from_parts(281474976710655, 65535, 65535))$$,
                'observing the largest possible value does not raise');
SELECT cmp_ok(causal.hlc_physical_ms(causal.hlc_now()),
              '<', (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000,
              'and does not drag the clock into the future');
SELECT is(causal.hlc_observe(NULL), NULL, 'NULL in, NULL out');

-- any role may read the clock; nobody needs a privilege for timestamps
CREATE ROLE causal_tap_reader;
SET LOCAL ROLE causal_tap_reader;
SELECT lives_ok('SELECT causal.hlc_now(), causal.hlc_current(), causal.cluster_logical_timestamp()',
                'an unprivileged role can issue timestamps');
SELECT lives_ok('SELECT * FROM causal.clock_status', 'and read the clock status');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
