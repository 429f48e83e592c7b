# Local multi-region meshes for the cluster tests, the benchmarks and the
# demo: regional instances on 127.0.0.1, the WAN proxy (causal-wan) between
# every ordered pair of them, and tools/mesh-init (causalctl init, the chat
# table of docker/region.sql) through that proxy, the way an operator builds
# a real mesh. Source it after cluster.sh.
#
#   mesh_up PREFIX BASE_PORT DELAY_MS REGION...   start, set up, join
#   mesh_add_region REGION PORT                   one more region joins
#   mesh_sql REGION [psql args]                   psql in a region's database
#   causalctl_mesh COMMAND [options]              causalctl on this mesh
#   causalctl_cut_off REGION COMMAND [options]    ... by an operator who cannot reach REGION
#   mesh_probe REGION... -- OPTIONS               causal-probe on some regions
#   mesh_native_up DB                             the baseline: the same regions and links
#                                                 as a native PostgreSQL mesh in database DB
#   mesh_native_probe DB REGION... -- OPTIONS     causal-probe on that baseline
#   mesh_pgbench REGION SECONDS RATE SCRIPT       pgbench in a region
#   wan COMMAND...                                steer the proxy: cut, heal, delay, status
#   mesh_down                                     stop everything

CAUSAL_BUILD=${CAUSAL_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
MESH_DB=${MESH_DB:-chat}
MESH_PREFIX="" MESH_REGIONS=() MESH_WAN_PID="" MESH_WAN_CONTROL=""
declare -A MESH_LINK_PORT=()  # "FROM:TO" -> the proxy port TO connects to for FROM

mesh_instance() { echo "$MESH_PREFIX-$1"; }
mesh_sql() { local r=$1; shift; instance_psql "$(mesh_instance "$r")" -d "$MESH_DB" "$@"; }
mesh_dsn() { echo "host=127.0.0.1 port=$1 user=postgres dbname=$MESH_DB"; }
mesh_region_dsn() { mesh_dsn "$(instance_port "$(mesh_instance "$1")")"; }
# mesh_probe REGION... -- OPTIONS: causal-probe writing in those regions
mesh_probe() {
  local args=()
  while [ "$1" != -- ]; do args+=(--region "$1=$(mesh_region_dsn "$1")"); shift; done
  shift
  "$CAUSAL_BUILD/causal-probe" "${args[@]}" "$@"
}
# mesh_native_probe DB REGION... -- OPTIONS: causal-probe on the native
# baseline (mesh_native_up DB)
mesh_native_probe() {
  local db=$1 args=(); shift
  while [ "$1" != -- ]; do
    args+=(--region "$1=host=127.0.0.1 port=$(instance_port "$(mesh_instance "$1")") user=postgres dbname=$db"); shift
  done
  shift
  "$CAUSAL_BUILD/causal-probe" "${args[@]}" --key-column msg_id "$@"
}
# mesh_pgbench REGION SECONDS RATE SCRIPT: pgbench, one client, in REGION
mesh_pgbench() {
  PGHOST=$CAUSAL_WORK PGPORT=$(instance_port "$(mesh_instance "$1")") PGUSER=postgres \
    "$PGBIN/pgbench" -n -c 1 -T "$2" -R "$3" -f "$4" "$MESH_DB"
}
wan() { "$CAUSAL_BUILD/causal-wan" send --control "$MESH_WAN_CONTROL" "$@"; }
causalctl_mesh() { CAUSALCTL_CONFIG="$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf" "$CAUSAL_BUILD/causalctl" "$@"; }
# causalctl_cut_off REGION COMMAND...: causalctl run by an operator who
# cannot reach REGION either, as in a partition that cuts it off from
# everyone (causalctl itself would tell it of its fence).
causalctl_cut_off() {
  local r=$1 config="$CAUSAL_WORK/$MESH_PREFIX.cut-off-$1.causalctl.conf"; shift
  sed "s|^region = $r=.*|region = $r=host=127.0.0.1 port=1 user=postgres dbname=$MESH_DB|" \
    "$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf" >"$config"
  CAUSALCTL_CONFIG="$config" "$CAUSAL_BUILD/causalctl" "$@"
}
# The proxy's link from FROM to TO: what TO's subscription to FROM goes through.
wan_link() { echo "$1:$2"; }

# A region's instance, without node id or name (causalctl init gives them),
# with timeouts short enough for tests to see a cut link, and its database.
mesh_region_start() {
  local r=$1 port=$2
  instance_init "$(mesh_instance "$r")" "$port" -1 "" \
    "wal_retrieve_retry_interval = '500ms'" "wal_receiver_timeout = '10s'" "wal_sender_timeout = '10s'" \
    "max_wal_senders = 20" "max_replication_slots = 20" "max_logical_replication_workers = 20" \
    "max_worker_processes = 32" "causal.database = '$MESH_DB'" "causal.heartbeat_interval = '250ms'" \
    "causal.notify_payload = 'hlc'" \
    "${MESH_CONF[@]}" >/dev/null || return 1
  instance_start "$(mesh_instance "$r")" || return 1
  instance_psql "$(mesh_instance "$r")" -d postgres -c "CREATE DATABASE $MESH_DB" >/dev/null
}

# mesh_up PREFIX BASE_PORT DELAY_MS REGION...: region i listens on
# BASE_PORT + i, the proxy's links on BASE_PORT + 100 + ..., its control on
# BASE_PORT + 99. Extra postgresql.conf lines: MESH_CONF (an array).
mesh_up() {
  MESH_PREFIX=$1; local base=$2 delay=$3; shift 3
  MESH_REGIONS=("$@")
  local i=0 r from to port link_port=$((base + 100)) links=() config
  MESH_WAN_CONTROL=$((base + 99))
  for r in "${MESH_REGIONS[@]}"; do
    port=$((base + i))
    mesh_region_start "$r" "$port" || return 1
    i=$((i + 1))
  done
  config="$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf"
  : >"$config"
  for r in "${MESH_REGIONS[@]}"; do
    echo "region = $r=$(mesh_region_dsn "$r")" >>"$config"
  done
  for from in "${MESH_REGIONS[@]}"; do
    for to in "${MESH_REGIONS[@]}"; do
      [ "$from" = "$to" ] && continue
      links+=(--link "$(wan_link "$from" "$to")=$link_port:127.0.0.1:$(instance_port "$(mesh_instance "$from")")")
      MESH_LINK_PORT["$from:$to"]=$link_port
      echo "link = $from:$to=$(mesh_dsn "$link_port")" >>"$config"
      link_port=$((link_port + 1))
    done
  done
  "$CAUSAL_BUILD/causal-wan" serve --control "$MESH_WAN_CONTROL" --delay-ms "$delay" "${links[@]}" \
    >"$CAUSAL_WORK/$MESH_PREFIX.wan.log" 2>&1 &
  MESH_WAN_PID=$!
  # Until it serves: a proxy that could not bind its ports has exited, and
  # `wan status` would have reached whatever else listens on the control port.
  for i in $(seq 1 50); do
    grep -q '^causal-wan: serving' "$CAUSAL_WORK/$MESH_PREFIX.wan.log" && break
    kill -0 "$MESH_WAN_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^causal-wan: serving' "$CAUSAL_WORK/$MESH_PREFIX.wan.log" ||
    { echo "mesh_up: the WAN proxy did not start:" >&2; cat "$CAUSAL_WORK/$MESH_PREFIX.wan.log" >&2; return 1; }
  CAUSALCTL="$CAUSAL_BUILD/causalctl" CAUSALCTL_CONFIG="$config" "$(dirname "${BASH_SOURCE[0]}")/../../tools/mesh-init" \
    >"$CAUSAL_WORK/$MESH_PREFIX.init.log" 2>&1 || { cat "$CAUSAL_WORK/$MESH_PREFIX.init.log" >&2; return 1; }
  mesh_wait_streaming
}

# The running apply workers of the current database's subscriptions
# (pg_stat_subscription shows every database's).
MESH_APPLY_WORKERS="pg_stat_subscription w JOIN pg_subscription s ON s.oid = w.subid
  WHERE w.pid IS NOT NULL AND w.relid IS NULL
    AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"

# Until every region's apply workers run, one per peer, and every table has
# finished its initial copy: until then its changes wait for the copy.
mesh_wait_streaming() {
  local r peers=$((${#MESH_REGIONS[@]} - 1))
  for r in "${MESH_REGIONS[@]}"; do
    wait_until "$(mesh_instance "$r")" "$MESH_DB" \
      "SELECT count(*) = $peers FROM $MESH_APPLY_WORKERS" 60 || return 1
    wait_until "$(mesh_instance "$r")" "$MESH_DB" \
      "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'" 60 || return 1
  done
}

# mesh_native_up DB: what the benchmarks compare pg_causal with, built in
# database DB of the same instances over the same proxied links. Native
# PostgreSQL 15 logical replication as a full mesh: each region publishes
# only the rows written in it (a row filter on `origin`, so that applied
# rows are not sent on again) and subscribes to every other region. Every
# row is announced with NOTIFY, locally and when applied, as pg_causal's
# `notify => true` does, so that causal-probe can time it.
mesh_native_up() {
  local db=$1 r from to
  for r in "${MESH_REGIONS[@]}"; do
    instance_psql "$(mesh_instance "$r")" -d postgres -c "CREATE DATABASE $db" >/dev/null || return 1
    instance_psql "$(mesh_instance "$r")" -d "$db" -v ON_ERROR_STOP=1 -v region="$r" >/dev/null <<'SQL' || return 1
CREATE SCHEMA chat;
CREATE TABLE chat.messages (
    msg_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id bigint NOT NULL,
    sender          text NOT NULL DEFAULT '',
    body            text NOT NULL DEFAULT '',
    sent_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    origin          text NOT NULL
);
ALTER TABLE chat.messages ALTER COLUMN origin SET DEFAULT :'region';
CREATE INDEX ON chat.messages (conversation_id, sent_at);
CREATE FUNCTION chat.announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('chat.messages', 'message ' || NEW.msg_id);
  RETURN NULL;
END $$;
CREATE TRIGGER announce AFTER INSERT ON chat.messages FOR EACH ROW EXECUTE FUNCTION chat.announce();
ALTER TABLE chat.messages ENABLE ALWAYS TRIGGER announce;
CREATE PUBLICATION native_mesh FOR TABLE chat.messages WHERE (origin = :'region') WITH (publish = 'insert');
SQL
  done
  for to in "${MESH_REGIONS[@]}"; do
    for from in "${MESH_REGIONS[@]}"; do
      [ "$from" = "$to" ] && continue
      instance_psql "$(mesh_instance "$to")" -d "$db" -v ON_ERROR_STOP=1 >/dev/null -c \
        "CREATE SUBSCRIPTION native_${from//-/_}_to_${to//-/_}
           CONNECTION 'host=127.0.0.1 port=${MESH_LINK_PORT["$from:$to"]} user=postgres dbname=$db'
           PUBLICATION native_mesh WITH (copy_data = false)" || return 1
    done
  done
  for r in "${MESH_REGIONS[@]}"; do
    wait_until "$(mesh_instance "$r")" "$db" \
      "SELECT count(*) = ${#MESH_REGIONS[@]} - 1 FROM $MESH_APPLY_WORKERS" 60 ||
      return 1
  done
}

# mesh_add_region NAME PORT: a new region joins the running mesh (directly,
# not through the proxy, whose links are fixed when it starts).
mesh_add_region() {
  local r=$1 port=$2
  mesh_region_start "$r" "$port" || return 1
  echo "region = $r=$(mesh_dsn "$port")" >>"$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf"
  MESH_REGIONS+=("$r")
  CAUSALCTL="$CAUSAL_BUILD/causalctl" CAUSALCTL_CONFIG="$CAUSAL_WORK/$MESH_PREFIX.causalctl.conf" \
    "$(dirname "${BASH_SOURCE[0]}")/../../tools/mesh-init" >>"$CAUSAL_WORK/$MESH_PREFIX.init.log" 2>&1 ||
    { cat "$CAUSAL_WORK/$MESH_PREFIX.init.log" >&2; return 1; }
  mesh_wait_streaming
}

# What readers check, against an order found independently of the merge:
# from the table alone, a message is deliverable when each of its deps
# names (by its hlc or a copy's) a message of its conversation that is here
# and deliverable. Counts the merged histories' violations of that: a
# deliverable message not delivered or one that is not delivered, and a
# delivered message placed before one of its deps (0 when causal order holds).
MESH_ORDER_VIOLATIONS_SQL="
WITH RECURSIVE
  names AS (SELECT conversation_id AS c, msg_id, hlc FROM chat.messages
            UNION ALL SELECT m.conversation_id, m.msg_id, (x).hlc FROM chat.messages m, unnest(m.copies) x),
  edges AS (SELECT m.conversation_id AS c, m.msg_id, n.msg_id AS dep_id
              FROM chat.messages m CROSS JOIN LATERAL unnest(m.deps) dep
              LEFT JOIN names n ON n.c = m.conversation_id AND n.hlc OPERATOR(pg_catalog.=) dep),
  undeliverable AS (SELECT msg_id FROM edges WHERE dep_id IS NULL
                    UNION SELECT e.msg_id FROM edges e JOIN undeliverable u ON u.msg_id = e.dep_id),
  h AS (SELECT g.c, u.* FROM (SELECT conversation_id AS c, causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS m
                                FROM chat.messages GROUP BY 1) g, causal.unnest(g.m) u)
SELECT (SELECT count(*) FROM h WHERE h.delivered = (h.msg_id IN (SELECT msg_id FROM undeliverable)))
     + (SELECT count(*) FROM edges e JOIN h m ON m.msg_id = e.msg_id JOIN h d ON d.msg_id = e.dep_id
         WHERE m.delivered AND d.position >= m.position)
     + (SELECT count(*) FROM (SELECT DISTINCT msg_id FROM chat.messages) t WHERE t.msg_id NOT IN (SELECT msg_id FROM h))"

# mesh_reply_script FILE: a pgbench script that replies to the newest
# message its region has in a random conversation of 20.
mesh_reply_script() {
  cat >"$1" <<'SQL'
\set conversation random(1, 20)
INSERT INTO chat.messages (conversation_id, sender, body, deps)
SELECT :conversation, current_setting('causal.region'), 'reply',
       ARRAY(SELECT hlc FROM chat.messages WHERE conversation_id = :conversation ORDER BY hlc DESC LIMIT 1);
SQL
}

mesh_down() {
  local r
  [ -n "$MESH_WAN_PID" ] && kill "$MESH_WAN_PID" 2>/dev/null && wait "$MESH_WAN_PID" 2>/dev/null
  MESH_WAN_PID=""
  for r in "${MESH_REGIONS[@]}"; do instance_stop "$(mesh_instance "$r")" >/dev/null 2>&1; done
  return 0
}
