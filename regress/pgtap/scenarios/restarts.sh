# Shared by the restart scenarios: record the clock right before an instance
# goes down and right after it comes back, in tables of its own database,
# for a pgTAP file to judge at the end. Source after cluster.sh.

restarts_setup() {  # restarts_setup NAME
  instance_psql "$1" -d postgres \
    -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION pg_causal' \
    -c 'CREATE TABLE before_restart (phase text PRIMARY KEY, last_issued causal.hlc,
                                      expectation text, why text)' \
    -c 'CREATE TABLE after_restart (phase text PRIMARY KEY, first_issued causal.hlc,
                                     physical_clock timestamptz, ahead_of_physical_ms bigint)' \
    >/dev/null
}

issue_load() {  # issue_load NAME: both cores issuing timestamps for a second
  "$PGBIN/pgbench" -n -h "$CAUSAL_WORK" -p "$(instance_port "$1")" -U postgres -d postgres \
    -c 2 -j 2 -T 1 -f regress/pgtap/scenarios/issue_batch.pgbench >/dev/null 2>&1 || true
}

# The largest value issued so far, and what must hold of the clock after the
# restart: a predicate over after_restart's columns, and why.
record_before() {  # record_before NAME PHASE EXPECTATION WHY
  instance_psql "$1" -d postgres -v phase="$2" -v expectation="$3" -v why="$4" >/dev/null <<'SQL'
INSERT INTO before_restart SELECT :'phase', causal.hlc_current(), :'expectation', :'why';
SQL
}

# The very first timestamp of the new life, and where the clock stands.
record_after() {  # record_after NAME PHASE
  instance_psql "$1" -d postgres -v phase="$2" >/dev/null <<'SQL'
INSERT INTO after_restart
SELECT :'phase', causal.hlc_now(), physical_clock, ahead_of_physical_ms FROM causal.clock_status;
SQL
}
