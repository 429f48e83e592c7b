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
    -c "CREATE TABLE issued (seq bigserial, backend int, h causal.hlc,
                             phase text DEFAULT current_setting('restarts.phase', true))" \
    >/dev/null
}

issued_in() {  # issued_in NAME PHASE: the timestamps the load of PHASE committed
  instance_psql "$1" -d postgres -At -c "SELECT count(*) FROM issued WHERE phase IS NOT DISTINCT FROM '$2'"
}

# issue_load NAME PHASE: both cores issuing timestamps for a second, tagged
# PHASE; fails unless they did.
issue_load() {
  PGOPTIONS="-c restarts.phase=$2" "$PGBIN/pgbench" -n -h "$CAUSAL_WORK" -p "$(instance_port "$1")" -U postgres \
    -d postgres -c 2 -j 2 -T 1 -f regress/pgtap/scenarios/issue_batch.pgbench >/dev/null 2>&1 &&
    [ "$(issued_in "$1" "$2")" -gt 0 ]
}

# load_until_killed NAME PHASE: the same load, running until its server
# goes down (then it fails, as a client of a crashed server does: see
# load_killed). Returns once it has committed 500 timestamps and still runs,
# so that a kill that follows is a kill under load.
LOAD_PID=""
load_until_killed() {
  local i
  PGOPTIONS="-c restarts.phase=$2" "$PGBIN/pgbench" -n -h "$CAUSAL_WORK" -p "$(instance_port "$1")" -U postgres \
    -d postgres -c 2 -j 2 -T 300 -f regress/pgtap/scenarios/issue_batch.pgbench >/dev/null 2>&1 &
  LOAD_PID=$!
  for i in $(seq 1 600); do
    [ "$(issued_in "$1" "$2")" -ge 500 ] 2>/dev/null && break
    sleep 0.05
  done
  [ "$(issued_in "$1" "$2")" -ge 500 ] && kill -0 "$LOAD_PID" 2>/dev/null
}
# load_killed: the load of load_until_killed ended with its server.
load_killed() {
  wait "$LOAD_PID" 2>/dev/null
  LOAD_PID=""
}

# The largest value issued so far, and what must hold of the clock after the
# restart: a predicate over after_restart's columns, and why. (A load still
# running issues more after it: restarts.sql compares with what it
# committed too.)
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
