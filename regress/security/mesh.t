#!/usr/bin/env bash
# The tenant-attack suite on a real mesh: three regions joined by causalctl
# through the WAN proxy. What a table owner's TRUNCATE, DELETE and code do
# once replication carries them: a TRUNCATE never circles the mesh or wipes
# a region, a DELETE leaves the same tombstone in every region while the
# messages written around it stay, and the owner's code that replicated rows
# fire runs as the owner, never as the apply worker's superuser.
source "$(dirname "$0")/../lib/cluster-test.sh"

mesh_up secmesh 24800 5 us-east eu-west ap-south || bail "could not build the mesh"

everywhere() {  # everywhere SQL [SECONDS]: waits until SQL is true in every region
  local r
  for r in "${MESH_REGIONS[@]}"; do wait_until "$(mesh_instance "$r")" "$MESH_DB" "$1" "${2:-30}" || return 1; done
}
in_each() {  # in_each SQL: SQL's answer in every region, joined by spaces
  local r out=()
  for r in "${MESH_REGIONS[@]}"; do out+=("$(mesh_sql "$r" -At -c "$1" 2>&1)"); done
  echo "${out[*]}"
}
sqlstate_in() {  # sqlstate_in REGION ROLE SQL: "ok", or the SQLSTATE of the error
  local out
  out=$(mesh_sql "$1" -At -U "$2" -v VERBOSITY=verbose -c "$3" 2>&1)
  if [[ $out =~ ERROR:\ \ ([0-9A-Z]{5}) ]]; then echo "${BASH_REMATCH[1]}"; else echo ok; fi
}

# A table owner in every region, with a table whose CHECK constraint runs
# the owner's code, and the evidence of that code running as a superuser.
for r in "${MESH_REGIONS[@]}"; do
  mesh_sql "$r" >/dev/null <<'SQL' || bail "could not set up $r"
SET client_min_messages = warning;
CREATE ROLE owner LOGIN;
CREATE TABLE public.ran_as_superuser (what text, role name);
GRANT INSERT ON public.ran_as_superuser TO PUBLIC;
CREATE SCHEMA tenant AUTHORIZATION owner;
SET ROLE owner;
CREATE FUNCTION tenant.spy(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    INSERT INTO public.ran_as_superuser VALUES (what, current_user);
    EXECUTE 'ALTER ROLE owner SUPERUSER';
  END IF;
  RETURN true;
END $$;
CREATE TABLE tenant.talk (conversation_id bigint, body text CHECK (tenant.spy(body)));
RESET ROLE;
SELECT causal.enable('tenant.talk', 'conversation_id');
SQL
done
causalctl_mesh init >/dev/null 2>&1
mesh_wait_streaming || bail "the mesh did not carry tenant.talk"

mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body)
                     SELECT 1, 'ana', 'before ' || g FROM generate_series(1, 20) g" >/dev/null
mesh_sql us-east -U owner -c "INSERT INTO tenant.talk (conversation_id, body) VALUES (1, 'from us-east')" >/dev/null
everywhere "SELECT count(*) = 20 FROM chat.messages" || bail "the first messages did not arrive"
everywhere "SELECT count(*) = 1 FROM tenant.talk" || bail "tenant.talk's row did not arrive"

# ---- the owner's code on the apply path -------------------------------------

is "$(in_each "SELECT coalesce(string_agg(what, ', '), 'none') FROM public.ran_as_superuser")" "none none none" \
   "a replicated row ran the owner's CHECK as the owner, in no region as a superuser"
is "$(in_each "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'")" "f f f" "the owner is no superuser anywhere"
is "$(sqlstate_in eu-west owner "CREATE FUNCTION tenant.hook() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
                                 CREATE TRIGGER hook BEFORE INSERT ON tenant.talk FOR EACH ROW EXECUTE FUNCTION tenant.hook();
                                 ALTER TABLE tenant.talk ENABLE ALWAYS TRIGGER hook")" 42501 \
   "the owner cannot add a trigger that the apply worker would fire"

# ---- TRUNCATE ----------------------------------------------------------------

is "$(sqlstate_in us-east postgres "TRUNCATE chat.messages")" 0A000 "TRUNCATE of a message table is refused"
is "$(sqlstate_in us-east owner "TRUNCATE tenant.talk")" 0A000 "also the owner's"
is "$(in_each "SELECT pubtruncate OR pubdelete FROM pg_publication WHERE pubname = 'causal_mesh'")" "f f f" \
   "no region publishes TRUNCATE or DELETE"
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'bo', 'after the TRUNCATE')" >/dev/null
everywhere "SELECT count(*) = 21 FROM chat.messages" 30
ok $? "every message is still in every region, the one written after the TRUNCATE too"

# ---- DELETE: one tombstone everywhere ----------------------------------------

deleted=$(mesh_sql us-east -At -c "SELECT msg_id FROM chat.messages WHERE body = 'before 7'")
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                      SELECT 1, 'bo', 'reply to 7', ARRAY[hlc] FROM chat.messages WHERE msg_id = '$deleted'" >/dev/null
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'reply to 7'" || bail "the reply did not arrive"
is "$(sqlstate_in eu-west postgres "DELETE FROM chat.messages WHERE msg_id = '$deleted'")" ok "eu-west deletes a message"
everywhere "SELECT body = '' AND deleted_at IS NOT NULL FROM chat.messages WHERE msg_id = '$deleted'" 30
ok $? "every region holds its tombstone: the body is gone"
is "$(in_each "SELECT count(*) FROM chat.messages")" "22 22 22" "no message was lost: the tombstone replaced the message"
is "$(in_each "SELECT deleted_at::text FROM chat.messages WHERE msg_id = '$deleted'" | tr ' ' '\n' | sort -u | wc -l)" 1 \
   "the same tombstone in every region"
is "$(in_each "SELECT bool_and(h.delivered)
                 FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) m FROM chat.messages
                        WHERE conversation_id = 1) c, causal.unnest(c.m) h")" "t t t" \
   "the reply to the deleted message stays delivered everywhere"
run verdict causalctl_mesh verify --wait 10
is "$rc" 0 "causalctl verify: the regions converge, deletions included ($verdict)"

# A DELETE's tombstone ends its relay: nothing goes on circling the mesh.
declare -A lsn
for r in "${MESH_REGIONS[@]}"; do lsn[$r]=$(mesh_sql "$r" -At -c "SELECT pg_current_wal_lsn()"); done
sleep 3
grew=0
for r in "${MESH_REGIONS[@]}"; do
  bytes=$(mesh_sql "$r" -At -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${lsn[$r]}')::bigint")
  [ "$bytes" -gt "$grew" ] && grew=$bytes
done
ok "$([ "$grew" -lt 200000 ]; echo $?)" "idle after the DELETE, no region writes WAL in a loop (most: $grew bytes in 3 s)"

done_testing
