#!/usr/bin/env bash
# Concurrent writers in all three regions, 20 ms apart: every region ends
# with every message and presents one order; and no reader, in any region, at
# any moment, sees a delivered reply before its parent.
#
# Each writer replies to the newest message its region has in a random
# conversation, so replies cross regions while their parents are still in
# flight. Readers meanwhile merge every conversation and count delivered
# messages whose dep is not delivered before them.
source "$(dirname "$0")/../lib/cluster-test.sh"
regions=(us-east eu-west ap-south)
seconds=${CONVERGE_SECONDS:-8}

plan 7
MESH_CONF=()
mesh_up converge 24500 20 "${regions[@]}" || bail "could not build the mesh"

mesh_reply_script "$work/write.sql"

writers=()
for r in "${regions[@]}"; do
  mesh_pgbench "$r" "$seconds" 150 "$work/write.sql" >"$work/pgbench-$r.log" 2>&1 &
  writers+=($!)
done
reads=0 seen=0
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
  for r in "${regions[@]}"; do
    v=$(mesh_sql "$r" -At -c "$MESH_ORDER_VIOLATIONS_SQL") || v=error
    reads=$((reads + 1))
    [ "$v" = 0 ] || { seen=$((seen + 1)); diag "$r: $v"; }
  done
done
wait "${writers[@]}"
written=0
for r in "${regions[@]}"; do
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench-$r.log")
  written=$((written + ${n:-0}))
done
diag "$written messages written, $reads reads during the load"
ok "$([ "$written" -gt 300 ] && echo 0 || echo 1)" "every region wrote (pgbench)"
is "$seen" 0 "no reader saw a delivered reply before its parent while messages were in flight"

causalctl_mesh verify --wait 30 >"$work/verify.txt"
ok $? "causalctl verify: the regions converge"
for r in "${regions[@]}"; do counts+="$(mesh_sql "$r" -At -c "SELECT count(*) FROM chat.messages") "; done
is "$counts" "$written $written $written " "every region holds every message once"
orders=$(for r in "${regions[@]}"; do
  mesh_sql "$r" -At -c "SELECT md5(string_agg(u.msg_id::text, ',' ORDER BY g.c, u.position))
                          FROM (SELECT conversation_id AS c, causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) AS m
                                  FROM chat.messages GROUP BY 1) g, causal.unnest(g.m) u"
done | sort -u | wc -l)
is "$orders" 1 "one order everywhere"
is "$(mesh_sql us-east -At -c "$MESH_ORDER_VIOLATIONS_SQL")" 0 "after convergence, every reply follows its parent"
is "$(mesh_sql eu-west -At -c "SELECT count(*) FROM causal.unnest((SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) FROM chat.messages)) WHERE NOT delivered")" 0 \
   "and everything is delivered"
done_testing
