#!/usr/bin/env bash
# Class: the replication processes, on a real mesh of three regions joined
# by causalctl through the WAN proxy: PostgreSQL's apply and table sync
# workers, pg_causal's relay (and its query on a peer). They run as
# causal_replicator, which is no superuser and runs no SQL but pg_causal's.
# A tenant's table in every region carries what the shape allows (a CHECK on
# length, an index on lower(sender), an ordinary trigger and a row-level
# security policy calling the owner's function); that code runs as the
# writer in the writing region and nowhere else. Then what a superuser could
# still leave in one region (a default that runs SQL from a string, a rule)
# meets the layer behind the shape, each attack with proof that the process
# reached it: the link's error, the relay's delivery. And a TRUNCATE never
# circles the mesh; a DELETE leaves the same tombstone everywhere.
source "$(dirname "$0")/../lib/cluster-test.sh"

mesh_up secmesh 24800 5 us-east eu-west ap-south || bail "could not build the mesh"
log_of() { echo "$(instance_dir "$(mesh_instance "$1")")/server.log"; }

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
spied_anywhere() {  # per region, what the owner's code logged it ran as, but as the owner, or the writer in us-east
  local r lines out=()
  for r in "${MESH_REGIONS[@]}"; do
    lines=$(grep -ho "pg_causal spy: .* ran as [a-z_]*" "$(log_of "$r")" | grep -v " ran as owner$" | sort -u)
    [ "$r" = us-east ] && lines=$(grep -v " ran as writer$" <<<"$lines")
    out+=("$r:$(paste -sd ';' - <<<"$lines" | grep . || echo none)")
  done
  echo "${out[*]}"
}

# A tenant in every region, with the evidence of its code running as a
# superuser, and a table of everything the shape allows.
for r in "${MESH_REGIONS[@]}"; do
  mesh_sql "$r" >/dev/null <<'SQL' || bail "could not set up $r"
SET client_min_messages = warning;
CREATE ROLE owner LOGIN;
CREATE ROLE writer LOGIN;
CREATE TABLE public.ran_as_superuser (what text, role name);
GRANT INSERT ON public.ran_as_superuser TO PUBLIC;
CREATE SCHEMA tenant AUTHORIZATION owner;
GRANT USAGE ON SCHEMA tenant TO writer;
SET ROLE owner;
CREATE FUNCTION tenant.spy(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE LOG 'pg_causal spy: % ran as %', what, current_user;
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    INSERT INTO public.ran_as_superuser VALUES (what, current_user);
    EXECUTE 'ALTER ROLE owner SUPERUSER';
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION tenant.on_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM tenant.spy('a trigger'); RETURN NEW; END $$;
CREATE TABLE tenant.talk (conversation_id bigint NOT NULL, sender text NOT NULL DEFAULT '',
                          body text NOT NULL DEFAULT '' CHECK (length(body) < 4000),
                          sent_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON tenant.talk (lower(sender));
CREATE TRIGGER audit BEFORE INSERT ON tenant.talk FOR EACH ROW EXECUTE FUNCTION tenant.on_row();
ALTER TABLE tenant.talk ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY writers ON tenant.talk USING (tenant.spy('a policy')) WITH CHECK (tenant.spy('a policy'));
GRANT SELECT, INSERT ON tenant.talk TO writer;
RESET ROLE;
SELECT causal.enable('tenant.talk', 'conversation_id');
SQL
done
causalctl_mesh init >/dev/null 2>&1
mesh_wait_streaming || bail "the mesh did not carry tenant.talk"

# ---- who the replication processes are ----------------------------------------
is "$(in_each "SELECT string_agg(DISTINCT subowner::regrole::text, ',') FROM pg_subscription")" \
   "causal_replicator causal_replicator causal_replicator" "every link belongs to causal_replicator"
is "$(in_each "SELECT string_agg(DISTINCT a.usename, ',') FROM pg_stat_subscription w JOIN pg_stat_activity a ON a.pid = w.pid")" \
   "causal_replicator causal_replicator causal_replicator" "every apply worker runs as causal_replicator"
everywhere "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_causal relay' AND usename = 'causal_replicator'" 20
ok $? "every region's relay worker runs as causal_replicator"
is "$(in_each "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication FROM pg_roles WHERE rolname = 'causal_replicator'")" \
   "f f f" "causal_replicator is no superuser, and may neither create roles or databases nor replicate"
out=$(psql -X -At -h 127.0.0.1 -p "$(instance_port "$(mesh_instance us-east)")" -U causal_replicator -d "$MESH_DB" \
        -v VERBOSITY=verbose -c "SELECT count(*) FROM tenant.talk" 2>&1)
ok "$([[ $out == *"ERROR:  42501: causal_replicator runs no SQL statements but pg_causal's own"* ]]; echo $?)" \
   "a session that logs in as causal_replicator (this test's servers trust every login) runs no statement"

# ---- the owner's code runs as the writer, where it writes ----------------------------
mesh_sql us-east -U writer -c "INSERT INTO tenant.talk (conversation_id, sender, body)
                               SELECT 1, 'ana', 'from us-east ' || g FROM generate_series(1, 5) g" >/dev/null ||
  bail "the writer could not write in us-east"
everywhere "SELECT count(*) = 5 FROM tenant.talk WHERE body LIKE 'from us-east %'"
stored=$?
ok $stored "the apply workers of eu-west and ap-south stored the writer's 5 rows, under FORCE ROW LEVEL SECURITY"
[ $stored = 0 ] || bail "tenant.talk's rows did not arrive"
ok "$(grep -q "pg_causal spy: a trigger ran as writer" "$(log_of us-east)"; echo $?)" \
   "in us-east the owner's trigger ran as the writer"
is "$(spied_anywhere)" "us-east:none eu-west:none ap-south:none" \
   "the owner's trigger and policy ran nowhere else, as nobody else"
is "$(in_each "SELECT coalesce(string_agg(what, ', '), 'none') FROM public.ran_as_superuser")" "none none none" \
   "no tenant code ran as a superuser"

# ---- what the owner may not do in a peer ------------------------------------------------
is "$(sqlstate_in eu-west owner "REVOKE INSERT ON tenant.talk FROM causal_replicator")" 42501 \
   "the owner cannot revoke the replication role's rights in a peer (every table's link would stop)"
is "$(sqlstate_in eu-west owner "CREATE RULE r AS ON INSERT TO tenant.talk DO ALSO SELECT tenant.spy('a rule')")" 42501 \
   "nor add a rule"
is "$(sqlstate_in eu-west owner "ALTER TABLE tenant.talk ADD COLUMN x text
                                 DEFAULT query_to_xml('SELECT tenant.spy(''query_to_xml'')', true, false, '')::text")" 42501 \
   "nor a default that runs SQL given as a string"

# ---- behind the shape: a default a superuser left in one region -----------------------------
# As a 0.3.0 database could hold it: eu-west's tenant.talk has a column the
# others lack, whose default runs SQL given as a string. PostgreSQL's apply
# worker fills it in for us-east's rows, as causal_replicator, before any
# trigger: the statement is refused, the link stops (and says why), and
# nothing of the owner's runs.
# (The default is set after the column is there: ADD COLUMN with it would
# run it for every row, as the superuser who adds it.)
mesh_sql eu-west -c "ALTER TABLE tenant.talk ADD COLUMN x text" \
  -c "ALTER TABLE tenant.talk ALTER COLUMN x
        SET DEFAULT query_to_xml('SELECT tenant.spy(''a default in the apply worker'')', true, false, '')::text" \
  >/dev/null || bail "could not add the column in eu-west"
mesh_sql us-east -U writer -c "INSERT INTO tenant.talk (conversation_id, sender, body) VALUES (1, 'ana', 'stuck')" >/dev/null
wait_until "$(mesh_instance eu-west)" "$MESH_DB" \
  "SELECT count(*) > 0 FROM causal.link_errors() WHERE message LIKE '%runs no SQL statements but pg_causal''s own%'" 30
ok $? "eu-west's apply worker reached the default for us-east's row, and its statement was refused"
is "$(spied_anywhere)" "us-east:none eu-west:none ap-south:none" "... the owner's code did not run"
run status causalctl_mesh status
ok "$([[ $status == *"us-east -> eu-west"*"42501"*"runs no SQL statements"* ]]; echo $?)" \
   "causalctl status names the stopped link and why"
mesh_sql eu-west -c "ALTER TABLE tenant.talk DROP COLUMN x" >/dev/null
wait_until "$(mesh_instance eu-west)" "$MESH_DB" "SELECT count(*) = 1 FROM tenant.talk WHERE body = 'stuck'" 30
ok $? "once the superuser drops the column, the row arrives"
is "$(in_each "SELECT coalesce(string_agg(what, ', '), 'none') FROM public.ran_as_superuser")" "none none none" \
   "no tenant code ran as a superuser"

# ---- behind the shape: a rule in the relay's way --------------------------------------------
# A rule a superuser left on ap-south's tenant.talk, enabled ALWAYS. With
# its link from us-east cut, ap-south takes us-east's rows from eu-west:
# the relay stores them below SQL, where no rule applies.
# Its table also has two columns the others lack, with defaults: the relay
# gives each pulled row theirs, as the apply worker would.
mesh_sql ap-south >/dev/null <<'SQL' || bail "could not add the rule"
CREATE RULE spied AS ON INSERT TO tenant.talk DO ALSO SELECT tenant.spy('a rule in the relay');
ALTER TABLE tenant.talk ENABLE ALWAYS RULE spied;
ALTER TABLE tenant.talk ADD COLUMN x uuid DEFAULT gen_random_uuid(), ADD COLUMN y uuid DEFAULT gen_random_uuid();
SQL
wan cut "$(wan_link us-east ap-south)" >/dev/null || bail "could not cut us-east -> ap-south"
mesh_sql us-east -U writer -c "INSERT INTO tenant.talk (conversation_id, sender, body)
                               SELECT 2, 'ana', 'relayed ' || g FROM generate_series(1, 3) g" >/dev/null
wait_until "$(mesh_instance ap-south)" "$MESH_DB" "SELECT count(*) = 3 FROM tenant.talk WHERE body LIKE 'relayed %'" 30
ok $? "with its link from us-east cut, ap-south's relay pulled us-east's rows from eu-west"
is "$(spied_anywhere)" "us-east:none eu-west:none ap-south:none" \
   "... and the rule on the table ran for none of them"
is "$(mesh_sql ap-south -At -c "SELECT count(DISTINCT x) || ' ' || count(DISTINCT y) || ' ' || count(*) FILTER (WHERE x = y)
                                  FROM tenant.talk WHERE body LIKE 'relayed %'")" "3 3 0" \
   "... each pulled row with its own default in each column the peer lacks"
is "$(in_each "SELECT coalesce(string_agg(what, ', '), 'none') FROM public.ran_as_superuser")" "none none none" \
   "no tenant code ran as a superuser"

# ---- the relay's query on a peer --------------------------------------------------------------
# In eu-west the owner drops tenant.talk and puts a view in its place whose
# query calls its function. ap-south's relay, still not hearing us-east,
# asks eu-west for its rows, as the link's login (here a superuser): it
# locks the relation there and finds no plain table, and reads nothing of it.
mesh_sql ap-south -c "DROP RULE spied ON tenant.talk" >/dev/null
mesh_sql eu-west -U owner >/dev/null <<'SQL' || bail "could not put a view in eu-west"
DROP TABLE tenant.talk;
CREATE VIEW tenant.talk AS
  SELECT 1::bigint AS conversation_id, ''::text AS sender, ''::text AS body, now() AS sent_at, NULL::uuid AS msg_id,
         NULL::causal.hlc AS hlc, '{}'::causal.hlc[] AS deps, ''::text AS crdb_region, 0::bigint AS epoch,
         NULL::causal.hlc AS deleted_at, '{}'::causal.copy[] AS copies, NULL::text AS written_by
   WHERE tenant.spy('a view the relay reads');
SQL
skipped="tenant.talk of region \"eu-west\" is no plain table with pg_causal's stamp columns"
pulled_past() {  # pulled_past COUNT: until ap-south's relay has skipped eu-west's tenant.talk more than COUNT times
  local _
  for _ in $(seq 100); do
    [ "$(grep -c "$skipped" "$(log_of ap-south)")" -gt "$1" ] && return 0
    mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'pull me')" >/dev/null
    sleep 0.2
  done
  return 1
}
pulled_past "$(grep -c "$skipped" "$(log_of ap-south)")"
ok $? "ap-south's relay asked eu-west for tenant.talk, found a view, and left it"
is "$(spied_anywhere)" "us-east:none eu-west:none ap-south:none" "... before anything of the view ran"
# A plain table in its place whose hlc is of the owner's type, with an
# implicit cast to causal.hlc of the owner's: the relay's query would
# compare it with pg_causal's functions, through that cast, as the link's
# login. The relay checks the types there first.
mesh_sql eu-west -U owner >/dev/null <<'SQL' || bail "could not put a table of the owner's types in eu-west"
DROP VIEW tenant.talk;
CREATE TYPE tenant.stamp AS (n int);
CREATE FUNCTION tenant.to_hlc(s tenant.stamp) RETURNS causal.hlc LANGUAGE plpgsql AS
  $$ BEGIN PERFORM tenant.spy('a cast the relay calls'); RETURN causal.hlc_from_parts(1, 0, 1); END $$;
CREATE CAST (tenant.stamp AS causal.hlc) WITH FUNCTION tenant.to_hlc(tenant.stamp) AS IMPLICIT;
CREATE TABLE tenant.talk (conversation_id bigint, sender text, body text, sent_at timestamptz, msg_id uuid,
                          hlc tenant.stamp, deps causal.hlc[], crdb_region text, epoch bigint, deleted_at causal.hlc,
                          copies causal.copy[], written_by text);
INSERT INTO tenant.talk (conversation_id, hlc, copies) VALUES (1, ROW(1), '{}');
SQL
pulled_past "$(grep -c "$skipped" "$(log_of ap-south)")"
ok $? "ap-south's relay asked eu-west for tenant.talk again, found an hlc of another type, and left it"
is "$(spied_anywhere)" "us-east:none eu-west:none ap-south:none" "... before the owner's cast ran"
wan heal "$(wan_link us-east ap-south)" >/dev/null
is "$(in_each "SELECT coalesce(string_agg(what, ', '), 'none') FROM public.ran_as_superuser")" "none none none" \
   "no tenant code ran as a superuser"
is "$(in_each "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'")" "f f f" "the owner is no superuser anywhere"
mesh_sql eu-west -U owner -c "DROP TABLE tenant.talk" >/dev/null
for r in "${MESH_REGIONS[@]}"; do mesh_sql "$r" -c "SELECT causal.disable('tenant.talk')" >/dev/null 2>&1; done
causalctl_mesh init >/dev/null 2>&1
mesh_wait_streaming || bail "the mesh did not stream again without tenant.talk"

# ---- what a link's error tells pg_monitor -------------------------------------------------------
# A column eu-west has as an integer and the others as text: eu-west's apply
# worker stops on the value us-east sends, and PostgreSQL's message quotes
# it. causal.link_errors() keeps the message as written before the value
# went in.
mesh_sql eu-west -c "ALTER TABLE chat.messages ADD COLUMN note int" >/dev/null
for r in us-east ap-south; do mesh_sql "$r" -c "ALTER TABLE chat.messages ADD COLUMN note text" >/dev/null; done
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body, note)
                     VALUES (9, 'ana', 'private', 'my password is hunter2')" >/dev/null
wait_until "$(mesh_instance eu-west)" "$MESH_DB" "SELECT count(*) > 0 FROM causal.link_errors() WHERE sqlstate = '22P02'" 30
ok $? "eu-west's apply worker stopped on the value (22P02)"
mesh_sql eu-west -c "CREATE ROLE watcher LOGIN IN ROLE pg_monitor" >/dev/null
seen=$(mesh_sql eu-west -At -U watcher -c "SELECT sqlstate || ' ' || message FROM causal.link_errors() WHERE sqlstate = '22P02'")
ok "$([[ $seen == "22P02 invalid input syntax for type %s: \"%s\""* ]]; echo $?)" \
   "a pg_monitor member reads the SQLSTATE and the message without its values ($seen)"
run status causalctl_mesh status
ok "$([[ $status != *hunter2* && $seen != *hunter2* ]]; echo $?)" "neither it nor causalctl status shows the row's value"
mesh_sql eu-west -c "ALTER TABLE chat.messages ALTER COLUMN note TYPE text" >/dev/null
wait_until "$(mesh_instance eu-west)" "$MESH_DB" "SELECT count(*) = 1 FROM chat.messages WHERE body = 'private'" 30
ok $? "once eu-west's column is text too, the row arrives"

# ---- a link of a superuser's: from before 0.4.0 -------------------------------------------------
mesh_sql eu-west -c "ALTER SUBSCRIPTION $(mesh_sql eu-west -At -c "SELECT subname FROM pg_subscription ORDER BY 1 LIMIT 1")
                     OWNER TO postgres" >/dev/null
run status causalctl_mesh status
ok "$([[ $status == *"belongs to postgres, not causal_replicator"* ]]; echo $?)" "causalctl status names a link a superuser owns"
run out causalctl_mesh init
ok "$([[ $out == *"1 subscription given to causal_replicator"* ]]; echo $?)" "causalctl init gives it to causal_replicator"
wait_until "$(mesh_instance eu-west)" "$MESH_DB" \
  "SELECT count(*) = 2 FROM pg_stat_subscription w JOIN pg_stat_activity a ON a.pid = w.pid
    WHERE a.usename = 'causal_replicator' AND w.relid IS NULL" 30
ok $? "the liveness worker restarts its worker, which then runs as causal_replicator"

# ---- TRUNCATE ----------------------------------------------------------------
is "$(sqlstate_in us-east postgres "TRUNCATE chat.messages")" 0A000 "TRUNCATE of a message table is refused"
is "$(in_each "SELECT pubtruncate OR pubdelete FROM pg_publication WHERE pubname = 'causal_mesh'")" "f f f" \
   "no region publishes TRUNCATE or DELETE"

# ---- DELETE: one tombstone everywhere ----------------------------------------
mesh_sql us-east -c "INSERT INTO chat.messages (conversation_id, sender, body)
                     SELECT 1, 'ana', 'before ' || g FROM generate_series(1, 20) g" >/dev/null
everywhere "SELECT count(*) = 20 FROM chat.messages WHERE body LIKE 'before %'" || bail "the messages did not arrive"
deleted=$(mesh_sql us-east -At -c "SELECT msg_id FROM chat.messages WHERE body = 'before 7'")
mesh_sql ap-south -c "INSERT INTO chat.messages (conversation_id, sender, body, deps)
                      SELECT 1, 'bo', 'reply to 7', ARRAY[hlc] FROM chat.messages WHERE msg_id = '$deleted'" >/dev/null
everywhere "SELECT count(*) = 1 FROM chat.messages WHERE body = 'reply to 7'" || bail "the reply did not arrive"
is "$(sqlstate_in eu-west postgres "DELETE FROM chat.messages WHERE msg_id = '$deleted'")" ok "eu-west deletes a message"
everywhere "SELECT body = '' AND deleted_at IS NOT NULL FROM chat.messages WHERE msg_id = '$deleted'" 30
ok $? "every region holds its tombstone: the body is gone"
is "$(in_each "SELECT deleted_at::text FROM chat.messages WHERE msg_id = '$deleted'" | tr ' ' '\n' | sort -u | wc -l)" 1 \
   "the same tombstone in every region"
is "$(in_each "SELECT bool_and(h.delivered)
                 FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) m FROM chat.messages
                        WHERE conversation_id = 1) c, causal.unnest(c.m) h")" "t t t" \
   "the reply to the deleted message stays delivered everywhere"
run verdict causalctl_mesh verify --wait 10
is "$rc" 0 "causalctl verify: the regions converge, deletions included ($verdict)"

done_testing
