#!/usr/bin/env bash
# Class: causal.enable(), SECURITY DEFINER, acting on a table an untrusted
# role owns, called by a superuser or a causal_admin member. It must lock
# the table before it judges it, judge it as it is under the lock, read it
# and change it only as its owner, and act only on tables its caller may
# name. Each attack ends with proof that enable() reached the point where
# the owner's code would have run (it waited for the owner's lock, it
# stamped the rows), and with the checks every attack ends with.
set -u
cd "$(dirname "$0")/../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
source regress/security/lib.sh
trap 'instance_stop sec-enable >/dev/null 2>&1' EXIT
sec_start sec-enable 24386 || bail "could not start an instance"
log="$(instance_dir sec-enable)/server.log"

su_sql >/dev/null <<'SQL' || bail "could not set up"
CREATE EXTENSION pg_causal;
GRANT causal_admin TO admin;
CREATE SCHEMA app AUTHORIZATION owner;
GRANT USAGE ON SCHEMA app TO admin;
SELECT causal.register_region('test-east', 1);
CREATE TABLE public.ran_as_superuser (what text, role name, at timestamptz DEFAULT now());
GRANT INSERT ON public.ran_as_superuser TO PUBLIC;
SQL
spy_in app owner
ran_as_superuser() {  # ran_as_superuser WHAT
  is "$(su_sql -c "SELECT coalesce(string_agg(what || ' as ' || role, ', '), 'none') FROM public.ran_as_superuser")" \
     none "$1: no tenant code ran as a superuser"
}

# ---- checked before the lock: a table that becomes a view ---------------------
# The owner's table has every column of a message table and no rows, so that
# enable() adds nothing before it reads it. While the owner holds the
# table's lock, a causal_admin member calls enable(); the owner then turns
# the table into a view whose rule calls its function, and commits.
sql owner >/dev/null <<'SQL'
CREATE TABLE app.trap (conversation_id bigint, body text, msg_id uuid, hlc causal.hlc, deps causal.hlc[],
                       crdb_region text, epoch bigint, deleted_at causal.hlc, copies causal.copy[], written_by text);
SQL
fifo="$(instance_dir sec-enable)/owner.in"
mkfifo "$fifo"
psql -X -q -h "$CAUSAL_WORK" -p 24386 -U owner -d "$SEC_DB" <"$fifo" >/dev/null 2>&1 &
owner_session=$!
exec 3>"$fifo"
echo "BEGIN; LOCK TABLE app.trap IN ACCESS EXCLUSIVE MODE;" >&3
for _ in $(seq 50); do
  [ "$(su_sql -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                   WHERE c.relname = 'trap' AND l.granted AND l.mode = 'AccessExclusiveLock'")" = 1 ] && break
  sleep 0.1
done
( sqlstate admin "SELECT causal.enable('app.trap', 'conversation_id')" >"$(instance_dir sec-enable)/enable.out" ) &
enabler=$!
waited=no
for _ in $(seq 100); do
  [ "$(su_sql -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                   WHERE c.relname = 'trap' AND NOT l.granted")" -gt 0 ] && { waited=yes; break; }
  sleep 0.1
done
is "$waited" yes "enable() waits for the owner's lock on the table"
cat >&3 <<'SQL'
CREATE RULE "_RETURN" AS ON SELECT TO app.trap DO INSTEAD
  SELECT 1::bigint AS conversation_id, 'x'::text AS body, NULL::uuid AS msg_id, NULL::causal.hlc AS hlc,
         NULL::causal.hlc[] AS deps, NULL::text AS crdb_region, NULL::bigint AS epoch, NULL::causal.hlc AS deleted_at,
         NULL::causal.copy[] AS copies, NULL::text AS written_by
   WHERE app.spy('a view read by enable()');
COMMIT;
SQL
exec 3>&-
wait "$owner_session"
wait "$enabler"
is "$(su_sql -c "SELECT relkind FROM pg_class WHERE oid = 'app.trap'::regclass")" v \
   "... the owner turned the table into a view before enable() got the lock"
is "$(cat "$(instance_dir sec-enable)/enable.out")" 42809 \
   "enable() then judges what it locked, a view, and refuses it (42809), without reading it"
ran_as_superuser "a table turned into a view while enable() waited"
is "$(spied "$log" owner)" none "... the view's function ran as nobody but its owner"
no_escalation "a table turned into a view while enable() waited"

# ---- rows read and stamped as the owner -----------------------------------------
# A superuser's constraint of the owner's function (the owner could not add
# it: table_shape.cpp), and the owner's triggers on the table: enable()
# stamps the rows from before as the owner, and fires none of its triggers.
sql owner >/dev/null <<'SQL'
CREATE TABLE app.older (conversation_id bigint, body text);
INSERT INTO app.older VALUES (1, 'from before pg_causal'), (2, 'also');
CREATE TABLE app.fired (what text, role name);
GRANT INSERT ON app.fired TO PUBLIC;
CREATE FUNCTION app.on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO app.fired VALUES (TG_NAME, current_user); RETURN NULL; END $$;
CREATE TRIGGER on_update AFTER UPDATE ON app.older FOR EACH STATEMENT EXECUTE FUNCTION app.on_update();
CREATE TRIGGER on_update_row AFTER UPDATE ON app.older FOR EACH ROW EXECUTE FUNCTION app.on_update();
CREATE INDEX ON app.older (lower(body));
SQL
su_sql -c "ALTER TABLE app.older ADD CONSTRAINT watched CHECK (app.spy('check constraint during enable()')) NOT VALID" >/dev/null
is "$(sqlstate postgres "SELECT causal.enable('app.older', 'conversation_id')")" 42501 \
   "enable() refuses a table whose CHECK calls a function of its owner's, even for a superuser"
su_sql -c "ALTER TABLE app.older DROP CONSTRAINT watched" >/dev/null
is "$(sqlstate admin "SELECT causal.enable('app.older', 'conversation_id')")" ok \
   "a causal_admin member enables the owner's table with rows, triggers and an index on lower(body)"
is "$(su_sql -c "SELECT count(*) FROM app.older WHERE hlc IS NOT NULL AND crdb_region = 'test-east'")" 2 \
   "enable() stamped the rows from before"
is "$(su_sql -c "SELECT count(*) FROM app.fired")" 0 "enable() fired none of the owner's triggers"
ran_as_superuser "enable() on the owner's table"

# ---- what a causal_admin member may name ------------------------------------------
su_sql >/dev/null <<'SQL'
CREATE SCHEMA hidden;
CREATE TABLE hidden.mine (conversation_id bigint, body text);
CREATE TABLE public.admins_only (conversation_id bigint, body text);
CREATE ROLE other_tenant;
CREATE SCHEMA closed AUTHORIZATION other_tenant;
CREATE TABLE closed.theirs (conversation_id bigint, body text);
ALTER TABLE closed.theirs OWNER TO other_tenant;
SQL
is "$(sqlstate admin "SELECT causal.enable('hidden.mine'::regclass::oid::regclass, 'conversation_id')")" 42501 \
   "a causal_admin member may not enable, by OID, a superuser's table in a schema it may not use"
is "$(sqlstate admin "SELECT causal.enable('public.admins_only', 'conversation_id')")" 42501 \
   "nor a superuser's table anywhere (enable() acts with pg_causal's rights)"
is "$(sqlstate admin "SELECT causal.enable($(su_sql -c "SELECT 'closed.theirs'::regclass::oid"), 'conversation_id')")" 42501 \
   "nor, by OID, another tenant's table in a schema it may not use"
is "$(su_sql -c "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('hidden.mine'::regclass, 'public.admins_only'::regclass,
                                                              'closed.theirs'::regclass)")" 0 "none of them was changed"
is "$(sqlstate postgres "SELECT causal.enable('public.admins_only', 'conversation_id')")" ok \
   "a superuser may enable a superuser's table"

# ---- generated stamps ---------------------------------------------------------------
sql owner -c "CREATE TABLE app.forged (conversation_id bigint, body text,
                hlc causal.hlc GENERATED ALWAYS AS ('1.00000@7'::causal.hlc) STORED)" >/dev/null
is "$(sqlstate admin "SELECT causal.enable('app.forged', 'conversation_id')")" 42P16 \
   "enable() refuses a table whose hlc is generated (every message would carry the owner's stamp)"

no_crash "enable()"
no_escalation "enable()"
done_testing
