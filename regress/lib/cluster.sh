# Local PostgreSQL instances for tests, benchmarks and the demo. Source it.
#
# PostgreSQL refuses to run as root. When the caller is root, every server
# runs as $CAUSAL_SERVER_USER (default: postgres, which Debian's package
# creates); otherwise as the caller. Instances live under $CAUSAL_WORK, talk
# over a Unix socket there and on 127.0.0.1 only.

PGBIN=${PGBIN:-$(pg_config --bindir)}
CAUSAL_WORK=${CAUSAL_WORK:-/tmp/pg_causal-$(id -u)}

if [ "$(id -u)" = 0 ]; then
  CAUSAL_SERVER_USER=${CAUSAL_SERVER_USER:-postgres}
  id "$CAUSAL_SERVER_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin "$CAUSAL_SERVER_USER"
  as_server() { runuser -u "$CAUSAL_SERVER_USER" -- "$@"; }
else
  as_server() { "$@"; }
fi

work_dir_ready() {
  mkdir -p "$CAUSAL_WORK"
  [ "$(id -u)" = 0 ] && chown "$CAUSAL_SERVER_USER" "$CAUSAL_WORK"
  chmod 0755 "$CAUSAL_WORK"
}

instance_dir() { echo "$CAUSAL_WORK/$1"; }
instance_port() { cat "$(instance_dir "$1")/port"; }

# instance_init NAME PORT NODE_ID REGION [extra postgresql.conf lines...]
instance_init() {
  local name=$1 port=$2 node=$3 region=$4; shift 4
  local dir; dir=$(instance_dir "$name")
  work_dir_ready
  instance_stop "$name" 2>/dev/null || true
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown "$CAUSAL_SERVER_USER" "$dir"
  echo "$port" >"$dir/port"
  as_server "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$CAUSAL_WORK'"
    echo "shared_preload_libraries = 'pg_causal'"
    echo "causal.node_id = $node"
    echo "causal.region = '$region'"
    echo "wal_level = logical"
    echo "max_connections = 50"
    echo "fsync = off"  # tests crash processes, not machines
    echo "log_line_prefix = '%m [%p] %q%a '"
    for line in "$@"; do echo "$line"; done
  } | as_server tee -a "$dir/data/postgresql.conf" >/dev/null
}

# instance_start NAME [VAR=value ...]: extra environment for the server, e.g.
# LD_PRELOAD and FAKETIME for a clock set back.
instance_start() {
  local name=$1; shift
  local dir pid; dir=$(instance_dir "$name")
  # After a kill -9 the pid file stays; pg_ctl would start anyway but warn
  # that another server might be running. None is when its pid is gone.
  pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && rm -f "$dir/data/postmaster.pid"
  as_server env "$@" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -n 30 "$dir/server.log" >&2; return 1; }
}

instance_stop() {
  local dir; dir=$(instance_dir "$1")
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_server "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

# kill -9 the postmaster, then wait until all its children have gone, so
# that the instance can start again on the same shared memory key.
instance_kill9() {
  local dir pid children c
  dir=$(instance_dir "$1")
  pid=$(head -n 1 "$dir/data/postmaster.pid")
  children=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
  kill -9 "$pid"
  for c in $pid $children; do
    for _ in $(seq 1 200); do [ -d "/proc/$c" ] || break; sleep 0.05; done
  done
}

# psql against an instance: instance_psql NAME [psql args...]
instance_psql() {
  local name=$1; shift
  psql -X -q -v ON_ERROR_STOP=1 -h "$CAUSAL_WORK" -p "$(instance_port "$name")" -U postgres "$@"
}

instance_env() {
  export PGHOST=$CAUSAL_WORK PGPORT=$(instance_port "$1") PGUSER=postgres
}

# Runs a pgTAP file on an instance and prints its TAP, as pg_prove would:
# tap_sql NAME DB FILE [psql args, e.g. -v name=value ...]
tap_sql() {
  local name=$1 db=$2 file=$3; shift 3
  psql -X --no-align --quiet --tuples-only --pset pager=off -v ON_ERROR_STOP=1 \
    -h "$CAUSAL_WORK" -p "$(instance_port "$name")" -U postgres -d "$db" "$@" -f "$file"
}

# For scenario scripts: stop with a TAP "Bail out!" when a setup step fails.
bail() { echo "Bail out! $*"; exit 255; }

# The replication mesh. Every region subscribes to every other region's
# publications (made by causal.enable(), as causalctl subscribes); copy_data
# off, since the regions start empty.
# mesh_subscribe FROM TO DB: TO applies what FROM publishes
mesh_subscribe() {
  local from=${1//-/_} to=${2//-/_} db=$3
  # the slot lives on the publisher, which has one per subscriber
  instance_psql "$2" -d "$db" -c "SET client_min_messages = warning" -c "CREATE SUBSCRIPTION causal_from_$from
    CONNECTION 'host=127.0.0.1 port=$(instance_port "$1") user=postgres dbname=$db'
    PUBLICATION causal_mesh, causal_messages, causal_copy WITH (copy_data = false, slot_name = 'causal_${from}_to_$to')" >/dev/null
}

# mesh_full DB NAME...: every pair, both ways
mesh_full() {
  local db=$1 from to; shift
  for from in "$@"; do
    for to in "$@"; do
      [ "$from" = "$to" ] || mesh_subscribe "$from" "$to" "$db" || return 1
    done
  done
}

# wait_until NAME DB SQL [SECONDS]: polls until the query returns true
wait_until() {
  local name=$1 db=$2 sql=$3 seconds=${4:-30} i
  for i in $(seq 1 $((seconds * 10))); do
    [ "$(instance_psql "$name" -d "$db" -At -c "$sql" 2>/dev/null)" = t ] && return 0
    sleep 0.1
  done
  echo "wait_until: timed out on $name: $sql" >&2
  return 1
}

# A session that LISTENs on CHANNEL and reads its notifications every 50 ms,
# as a client would: listener_start NAME DB CHANNEL, then listener_stop.
# Each returns once the server sees the session come or go.
LISTENER_PID=""
listener_sessions() {
  instance_psql "$1" -d "$2" -At -c \
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'causal_listener'"
}
listener_start() {
  local name=$1 db=$2 channel=$3
  { echo "LISTEN \"$channel\";"; while sleep 0.05; do echo 'SELECT 1;'; done; } |
    PGAPPNAME=causal_listener psql -X -q -At -h "$CAUSAL_WORK" -p "$(instance_port "$name")" -U postgres -d "$db" \
      >/dev/null 2>&1 &
  LISTENER_PID=$!
  until [ "$(listener_sessions "$name" "$db")" -gt 0 ]; do sleep 0.05; done
}
listener_stop() {
  local name=$1 db=$2
  [ -n "$LISTENER_PID" ] || return 0
  kill "$LISTENER_PID" 2>/dev/null || true
  wait "$LISTENER_PID" 2>/dev/null || true
  LISTENER_PID=""
  until [ "$(listener_sessions "$name" "$db")" = 0 ]; do sleep 0.05; done
}
