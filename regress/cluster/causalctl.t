#!/usr/bin/env bash
# causalctl's contract: its help and exit codes (0 done, 1 attention, 2 usage,
# 3 unreachable, 4 refused), init refusing to half-build a mesh (a region
# down, two regions with one node id) and changing nothing then, init giving
# distinct node ids and being idempotent, and on a three-region mesh behind
# the WAN proxy: verify telling a partitioned region's message apart and
# converging after the heal, status warning about the WAL slots hold, and the
# configuration file by --config and by $CAUSALCTL_CONFIG.
source "$(dirname "$0")/../lib/cluster-test.sh"
CLEANUP_INSTANCES=(ctl-plain1 ctl-plain2 ctl-plain3 ctl-plain4)
unset CAUSALCTL_CONFIG
causalctl=$CAUSAL_BUILD/causalctl
[ -x "$causalctl" ] || bail "no $causalctl: run make tools"


# --- the command line -------------------------------------------------------
run out "$causalctl" --help
is "$rc" 0 "--help exits 0"
for c in init status verify; do
  ok "$(grep -qE "^  $c " <<<"$out"; echo $?)" "--help describes the command $c"
done
ok "$(contains "$out" "exit codes")" "--help lists the exit codes"
for c in failover rejoin status; do
  run out "$causalctl" "$c" --help
  is "$rc" 0 "$c --help: exit 0"
  ok "$([[ $out == "usage: causalctl $c"* && $out != *"Builds the full mesh"* ]]; echo $?)" "... and it prints $c's help alone"
done
ok "$(contains "$("$causalctl" failover --help)" "--wait SECONDS")" "failover --help documents --wait"
ok "$(contains "$("$causalctl" --help)" "--connect-timeout")" "--help documents --connect-timeout and --json"
run out "$causalctl" help verify
is "$rc" 0 "causalctl help verify: exit 0"
ok "$(grep -q '^usage: causalctl verify' <<<"$out"; echo $?)" "... and it prints verify's help"
stdout=$("$causalctl" bogus 2>/dev/null); rc=$?
stderr=$("$causalctl" bogus 2>&1 >/dev/null)
is "$rc" 2 "an unknown command without regions: exit 2"
ok "$(contains "$stderr" 'unknown command "bogus"')" "... and it says so (not that regions are missing)"
is "$stdout" "" "... on stderr: nothing on stdout"

run out "$causalctl"
is "$rc" 2 "no arguments: exit 2"
run out "$causalctl" frobnicate --region a='host=127.0.0.1 port=25299'
is "$rc" 2 "an unknown command: exit 2"
ok "$(contains "$out" 'unknown command "frobnicate"')" "... and it says which command it does not know"
for spec in nodsn 'us-east=' '=host=127.0.0.1'; do
  run out "$causalctl" status --region "$spec"
  is "$rc" 2 "a malformed --region \"$spec\": exit 2"
done
ok "$(contains "$out" "--region wants NAME=DSN")" "... and it says what --region wants"
run out "$causalctl" status --region a='port=25299' --region a='port=25298'
is "$rc" 2 "a region given twice: exit 2"
# Two links one name would share a slot and a subscription: refused, by the
# links' names as PostgreSQL keeps them.
long=$(printf 'r%.0s' {1..60})
for names in "a b_to_c a_to_b c" "EU-West eu_west" "${long}1 ${long}2 c"; do
  regions=()
  for name in $names; do regions+=(--region "$name=port=25299"); done
  run out "$causalctl" status "${regions[@]}"
  is "$rc" 2 "regions $names: two links would share a name, exit 2"
done
ok "$(contains "$out" "would share the name causal_")" "... and it names the name they would share"
run out "$causalctl" status --region a='port=25299' --link a:b='port=25297'
is "$rc" 2 "a --link naming an unknown region: exit 2"
run out "$causalctl" status
is "$rc" 2 "no regions at all (no --region, --config or \$CAUSALCTL_CONFIG): exit 2"
run out "$causalctl" init --region a='host=127.0.0.1 port=25299'
is "$rc" 2 "init with a single region: exit 2"
# A number option is all number, in range, or refused before any region is
# reached (std::stoi took "5x" for 5; 0 made libpq wait forever).
for bad in "--connect-timeout 5x" "--connect-timeout 0" "--wait nan" "--wait -1" "--dead-after 1.5s" \
           "--max-slot-wal-mb 99999999999999999"; do
  # shellcheck disable=SC2086
  run out "$causalctl" status $bad --region a="host=127.0.0.1 port=25299 user=postgres"
  is "$rc" 2 "status $bad: refused as a usage error, exit 2"
done
ok "$([[ $out == *'--max-slot-wal-mb: "99999999999999999" is out of range'* ]]; echo $?)" \
   "... saying which option, what it was and that it is out of range"
[[ $out == *'--max-slot-wal-mb'* ]] || diag "$out"
printf 'region = a=host=127.0.0.1 port=25299 user=postgres\nwait = 2x\n' >"$work/bad-number.conf"
run out "$causalctl" verify --config "$work/bad-number.conf"
is "$rc" 2 "a malformed number in the configuration file: exit 2"
ok "$(contains "$out" '"2x" is not a number')" "... saying what it was"

# --- init on plain instances ------------------------------------------------
# Instances as an operator gets them: pg_causal preloaded for the mesh's
# database, no node id, no region name, an empty database, nothing else.
plain_up() {  # plain_up NAME PORT NODE_ID
  { instance_init "$1" "$2" "$3" "" "causal.database = '$MESH_DB'" && instance_start "$1"; } >/dev/null 2>&1 &&
    instance_psql "$1" -d postgres -c "CREATE DATABASE $MESH_DB" >/dev/null
}
plain_up ctl-plain1 25290 -1 || bail "could not start ctl-plain1"
plain_up ctl-plain2 25291 7 || bail "could not start ctl-plain2"
plain_up ctl-plain3 25292 7 || bail "could not start ctl-plain3"
plain_up ctl-plain4 25293 -1 || bail "could not start ctl-plain4"
unreachable_port=25299
dsn() { mesh_dsn "$(instance_port "$1")"; }
# What init would change in an instance, summed up.
footprint() {
  instance_psql "$1" -d "$MESH_DB" -At -c "
    SELECT 'node ' || current_setting('causal.node_id') || ', region ''' || current_setting('causal.region') ||
           ''', extensions ' || (SELECT count(*) FROM pg_extension WHERE extname = 'pg_causal') ||
           ', subscriptions ' || (SELECT count(*) FROM pg_subscription) ||
           ', publications ' || (SELECT count(*) FROM pg_publication) ||
           ', auto.conf ' || (SELECT count(*) FROM pg_file_settings
                               WHERE name LIKE 'causal.%' AND sourcefile LIKE '%postgresql.auto.conf')"
}
pristine() { echo "node $1, region '', extensions 0, subscriptions 0, publications 0, auto.conf 0"; }
# (bash's /dev/tcp: a fresh machine may have no ss)
(exec 3<>"/dev/tcp/127.0.0.1/$unreachable_port") 2>/dev/null && bail "something listens on port $unreachable_port"

run out "$causalctl" init --region one="$(dsn ctl-plain1)" \
  --region gone="host=127.0.0.1 port=$unreachable_port user=postgres dbname=$MESH_DB"
is "$rc" 3 "init with one region unreachable: exit 3"
ok "$(contains "$out" "gone: cannot connect")" "... and it names the unreachable region"
is "$(footprint ctl-plain1)" "$(pristine -1)" "... and changes nothing in the reachable one"
run out "$causalctl" init --json --region one="$(dsn ctl-plain1)" \
  --region gone="host=127.0.0.1 port=$unreachable_port user=postgres dbname=$MESH_DB"
is "$rc" 3 "init --json with one region unreachable: exit 3"
ok "$(contains "$out" '"region": "gone"')" "... and its JSON names the region"
run out "$causalctl" init --region one="$(dsn ctl-plain1)" \
  --region gone="host=127.0.0.1 port=$unreachable_port user=postgres dbname=$MESH_DB" \
  --region away="host=127.0.0.1 port=$((unreachable_port - 1)) user=postgres dbname=$MESH_DB"
is "$rc" 3 "init with two regions unreachable: exit 3"
ok "$([[ $out == *"gone: cannot connect"* && $out == *"away: cannot connect"* ]]; echo $?)" \
   "... and it names both in one run"
stderr=$(env -u PGUSER "$causalctl" status --region one="host=127.0.0.1 port=$unreachable_port dbname=$MESH_DB" 2>&1 >/dev/null)
ok "$(contains "$stderr" "names no user=")" "a DSN without user= that cannot connect: it says so, on stderr"

run out "$causalctl" init --region two="$(dsn ctl-plain2)" --region three="$(dsn ctl-plain3)"
is "$rc" 4 "init with two regions sharing causal.node_id 7: refused, exit 4"
ok "$(contains "$out" "causal.node_id 7")" "... and it says which node id is shared"
ok "$(contains "$out" "Nothing was changed")" "... and that nothing was changed"
is "$(footprint ctl-plain2)" "$(pristine 7)" "... and ctl-plain2 is untouched"
is "$(footprint ctl-plain3)" "$(pristine 7)" "... and ctl-plain3 is untouched"

init_plain() {
  "$causalctl" init --region one="$(dsn ctl-plain1)" --region two="$(dsn ctl-plain2)" \
    --region four="$(dsn ctl-plain4)"
}
run out init_plain
is "$rc" 0 "init on three plain instances (no node id, node id 7, no node id): exit 0"
[ "$rc" = 0 ] || diag "$out"
run out "$causalctl" status --region one="$(dsn ctl-plain1)" --region two="$(dsn ctl-plain2)" --region four="$(dsn ctl-plain4)"
is "$(grep -cE '^  [a-z]+ -> [a-z]+ +down ' <<<"$out")" 0 "status right after init: no link down (they are starting, or stream)"
ids=$(for p in ctl-plain1 ctl-plain2 ctl-plain4; do instance_psql "$p" -d "$MESH_DB" -At -c "SELECT current_setting('causal.node_id')"; done)
is "$(sed -n 2p <<<"$ids")" 7 "init keeps a node id that was set"
is "$(grep -E '^[0-9]+$' <<<"$ids" | sort -u | wc -l)" 3 "init gives distinct node ids: $(tr '\n' ' ' <<<"$ids")"
is "$(for p in ctl-plain1 ctl-plain2 ctl-plain4; do instance_psql "$p" -d "$MESH_DB" -At -c "SELECT current_setting('causal.region')"; done | tr '\n' ' ')" \
  "one two four " "init gives each its region name"
is "$(for p in ctl-plain1 ctl-plain2 ctl-plain4; do instance_psql "$p" -d "$MESH_DB" -At -c "SELECT count(*) FROM pg_subscription"; done | tr '\n' ' ')" \
  "2 2 2 " "init subscribes each region to the two others"
run out init_plain
is "$rc" 0 "init again: exit 0"
is "$(grep -c ': nothing to change$' <<<"$out")" 3 "init again: nothing to change in any of the three"
[ "$(grep -c ': nothing to change$' <<<"$out")" = 3 ] || diag "$out"
is "$(footprint ctl-plain3)" "$(pristine 7)" "ctl-plain3, left out, is still untouched"
for p in "${CLEANUP_INSTANCES[@]}"; do instance_stop "$p" >/dev/null 2>&1; done

# --- a mesh behind the WAN proxy --------------------------------------------
mesh_up ctl 25100 5 us-east eu-west ap-south || bail "could not build the mesh"
config=$CAUSAL_WORK/ctl.causalctl.conf

mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (9, 'ana', 'hello')" >/dev/null ||
  bail "could not write in us-east"
for r in eu-west ap-south; do
  wait_until "$(mesh_instance "$r")" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE conversation_id = 9" 20 ||
    bail "the first message did not reach $r"
done
run out causalctl_mesh verify
is "$rc" 0 "verify on a converged mesh: exit 0"
ok "$(contains "$out" "converged: 3 regions")" "... and it says the three regions converged"

# ap-south partitioned: nothing it writes leaves it.
wan cut "$(wan_link ap-south us-east)" >/dev/null && wan cut "$(wan_link ap-south eu-west)" >/dev/null ||
  bail "could not cut ap-south's links"
lost=$(mesh_sql ap-south -At -c "INSERT INTO chat.messages (conversation_id, sender, body)
                                 VALUES (9, 'cy', 'from the partition') RETURNING msg_id") ||
  bail "could not write in ap-south"
run out causalctl_mesh verify
is "$rc" 1 "verify with ap-south's message not delivered: exit 1"
ok "$(contains "$out" "NOT converged")" "... and it says NOT converged"
ok "$(contains "$out" "$lost")" "... and it names the missing message $lost"
ok "$(grep -q "us-east: .*lacks 1: $lost" <<<"$out"; echo $?)" "... as lacking in us-east"
[ "$rc" = 1 ] || diag "$out"
run out causalctl_mesh verify --json
is "$rc" 1 "verify --json: exit 1"
ok "$(contains "$out" '"converged": false')" "verify --json: \"converged\": false"
ok "$([[ $out == '{"ok": false, '* ]]; echo $?)" "... its first member \"ok\": false, as in every command's document"
ok "$(contains "$out" "\"missing\": [\"$lost\"]")" "verify --json lists $lost as missing"

wan heal "$(wan_link ap-south us-east)" >/dev/null && wan heal "$(wan_link ap-south eu-west)" >/dev/null ||
  bail "could not heal ap-south's links"
run out causalctl_mesh verify --wait 30
is "$rc" 0 "after the heal, verify --wait 30: exit 0"
[ "$rc" = 0 ] || diag "$out"
for r in us-east eu-west; do
  is "$(mesh_sql "$r" -At -c "SELECT count(*) FROM chat.messages WHERE msg_id = '$lost'")" 1 "$r holds $lost"
done

# status: every link streams again after the heal (the subscribers reconnect).
status_rc=1
for _ in $(seq 1 80); do
  causalctl_mesh status >/dev/null 2>&1 && { status_rc=0; break; }
  sleep 0.25
done
is "$status_rc" 0 "status after the heal: exit 0, every link streaming"
[ "$status_rc" = 0 ] || diag "$(causalctl_mesh status 2>&1)"
ok "$([[ $(causalctl_mesh status --json) == '{"ok": true, '* ]]; echo $?)" "status --json: \"ok\": true first"
run out causalctl_mesh status --max-slot-wal-mb 0
is "$rc" 1 "status --max-slot-wal-mb 0: exit 1"
ok "$(grep -q 'slot causal_[a-z_]* holds .* of WAL' <<<"$out"; echo $?)" "... with a warning that a slot holds WAL"
# status knows the mesh's slots by the links' names (causal::link_name over
# the regions given and registered), not by a prefix: someone else's slot
# named causal_... is none of its business.
mesh_sql us-east -c "SELECT pg_create_logical_replication_slot('causal_archive', 'pgoutput')" >/dev/null
run out causalctl_mesh status
is "$rc" 0 "status with another tool's slot causal_archive in us-east: exit 0"
ok "$([[ $out != *causal_archive* ]]; echo $?)" "... and it does not call it a link's"
[ "$rc" = 0 ] || diag "$out"
mesh_sql us-east -c "SELECT pg_drop_replication_slot('causal_archive')" >/dev/null

# The configuration file: --config, $CAUSALCTL_CONFIG, and --config first.
run out env -u CAUSALCTL_CONFIG "$causalctl" status --config "$config"
is "$rc" 0 "status --config FILE (no \$CAUSALCTL_CONFIG): exit 0"
is "$(grep -E '^  (us-east|eu-west|ap-south) +[0-9]+ ' <<<"$out" | awk '{print $1}' | sort | tr '\n' ' ')" "ap-south eu-west us-east " \
  "... and it reports the file's three regions"
is "$(grep -c -E '^  [a-z-]+ -> [a-z-]+ +streaming ' <<<"$out")" 6 "... and their six links, streaming"
run out env CAUSALCTL_CONFIG="$config" "$causalctl" verify
is "$rc" 0 "verify with \$CAUSALCTL_CONFIG: exit 0"
run out env CAUSALCTL_CONFIG="$CAUSAL_WORK/no-such.conf" "$causalctl" status
is "$rc" 2 "\$CAUSALCTL_CONFIG naming no file: exit 2"
ok "$(contains "$out" "cannot read the configuration file")" "... and it says it cannot read it"
run out env CAUSALCTL_CONFIG="$CAUSAL_WORK/no-such.conf" "$causalctl" status --config "$config"
is "$rc" 0 "--config wins over \$CAUSALCTL_CONFIG"

# One server under two names would vote twice: a DSN must reach its region.
run out "$causalctl" failover ap-south --force --region us-east="$(mesh_region_dsn us-east)" \
  --region eu-west="$(mesh_region_dsn us-east)" --region ap-south="$(mesh_region_dsn ap-south)"
is "$rc" 4 "failover with eu-west's DSN reaching us-east: refused, exit 4"
ok "$(contains "$out" "eu-west's DSN reaches a server whose causal.region is 'us-east'")" "... saying which DSN is wrong"
is "$(mesh_sql us-east -At -c "SELECT count(*) FROM causal.regions WHERE state = 'fenced'")" 0 "... and nothing was fenced"

# A region whose database runs another version of pg_causal: init refuses,
# changing nothing, and says what to run.
mesh_sql ap-south -c "UPDATE pg_extension SET extversion = '0.0.1' WHERE extname = 'pg_causal'" >/dev/null
run out causalctl_mesh init
is "$rc" 4 "init with a region at pg_causal 0.0.1: refused, exit 4"
ok "$(contains "$out" "ap-south: its database runs pg_causal 0.0.1")" "... naming the region and its version"
ok "$(contains "$out" "ALTER EXTENSION pg_causal UPDATE")" "... and saying what to run"
mesh_sql ap-south -c "UPDATE pg_extension SET extversion = (SELECT default_version FROM pg_available_extensions
                                                             WHERE name = 'pg_causal') WHERE extname = 'pg_causal'" >/dev/null

# A table enabled since: init carries it and says so, and then has nothing to do.
for r in us-east eu-west ap-south; do
  mesh_sql "$r" -c "CREATE TABLE chat.extra (conversation_id bigint NOT NULL, body text)" \
    -c "SELECT causal.enable('chat.extra', 'conversation_id')" >/dev/null || bail "could not enable chat.extra in $r"
done
run out causalctl_mesh init
is "$rc" 0 "init after a new table: exit 0"
is "$(grep -c 'carries 1 more table' <<<"$out")" 3 "... and each region says its links carry one more table"
[ "$(grep -c 'carries 1 more table' <<<"$out")" = 3 ] || diag "$out"
run out causalctl_mesh init
is "$(grep -c ': nothing to change$' <<<"$out")" 3 "init once more: nothing to change"

# --apply-commit: the subscriptions' synchronous_commit, local by default.
sync_modes() { for r in us-east eu-west ap-south; do
  mesh_sql "$r" -At -c "SELECT string_agg(DISTINCT subsynccommit, ',') FROM pg_subscription WHERE subname LIKE 'causal\_%'"
done | tr '\n' ' '; }
is "$(sync_modes)" "local local local " "init made every subscription flush what it applies at once (local)"
run out causalctl_mesh init --apply-commit off
is "$rc" 0 "init --apply-commit off: exit 0"
is "$(sync_modes)" "off off off " "... and every subscription now flushes in batches"
run out causalctl_mesh init --apply-commit sometimes
is "$rc" 2 "init --apply-commit sometimes: exit 2"
causalctl_mesh init >/dev/null 2>&1
is "$(sync_modes)" "local local local " "init without it goes back to local"

done_testing
