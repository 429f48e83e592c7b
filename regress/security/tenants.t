#!/usr/bin/env bash
# The tenant-attack suite: what a role pg_causal does not trust (a table
# owner, an unrelated login, a database owner) can try against one region,
# and what a trusted one (superuser, causal_admin) must not be tricked into.
# Every attack ends with the same checks: no role gained rights, no server
# process crashed, no message was lost. By class: crashes from SQL; a
# database owner's settings; objects adopted by name; the fence; forged
# history (the owner's code while pg_causal stores a row as the owner);
# what other sessions can see, LISTEN and link errors included; what
# causalctl reads. enable() is enable.t's, the shape of a message table
# shape.t's, the replication processes mesh.t's.
set -u
cd "$(dirname "$0")/../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
source regress/security/lib.sh
trap 'instance_stop sec-tenants >/dev/null 2>&1' EXIT
sec_start sec-tenants 24380 || bail "could not start an instance"
make -s tools >/dev/null || bail "could not build causalctl"

su_sql >/dev/null <<'SQL' || bail "could not set up"
CREATE EXTENSION pg_causal;
GRANT causal_admin TO admin;
CREATE SCHEMA chat AUTHORIZATION owner;
GRANT USAGE ON SCHEMA chat TO intruder, admin;
SELECT causal.register_region('test-east', 1);
SQL
sql owner -c "CREATE TABLE chat.messages (conversation_id bigint, sender text, body text DEFAULT '')" >/dev/null
su_sql -c "SELECT causal.enable('chat.messages', 'conversation_id')" >/dev/null || bail "could not enable"
sql owner -c "INSERT INTO chat.messages (conversation_id, sender, body)
              SELECT g % 3, 'ana', 'message ' || g FROM generate_series(1, 30) g" >/dev/null
MESSAGES=30
messages_kept() {  # messages_kept WHAT: every message sent so far is there, once
  is "$(su_sql -c "SELECT count(DISTINCT msg_id) || ' ' || count(*) FROM chat.messages WHERE sender = 'ana'")" \
     "$MESSAGES $MESSAGES" "$1: no message was lost or doubled"
}
# The evidence of an attack: code of a tenant's that ran as a superuser.
su_sql >/dev/null <<'SQL'
CREATE TABLE public.ran_as_superuser (what text, role name, at timestamptz DEFAULT now());
GRANT INSERT ON public.ran_as_superuser TO PUBLIC;
SQL
ran_as_superuser() {  # ran_as_superuser WHAT: none of the tenants' code ran as a superuser
  is "$(su_sql -c "SELECT coalesce(string_agg(what || ' as ' || role, ', '), 'none') FROM public.ran_as_superuser")" \
     none "$1: no tenant code ran as a superuser"
}
spy_in chat owner

# ---- crashes from SQL ------------------------------------------------------

for column in epoch hlc; do
  state=$(sqlstate intruder "
    CREATE TEMP TABLE lookalike (conversation_id int, msg_id uuid, hlc causal.hlc, deps causal.hlc[],
                                 crdb_region text, epoch bigint, deleted_at causal.hlc);
    ALTER TABLE lookalike ALTER COLUMN $column TYPE text;
    CREATE TRIGGER causal_message BEFORE INSERT ON lookalike FOR EACH ROW
      EXECUTE FUNCTION causal.message_trigger('conversation_id', 'quiet');
    INSERT INTO lookalike (conversation_id, $column) VALUES (1, 'x')")
  is "$state" 42501 "a login cannot put causal.message_trigger() on a table of its own ($column as text)"
  no_crash "message_trigger() on a temp table with a text $column"
done
state=$(sqlstate intruder "
  CREATE TEMP TABLE lookalike (conversation_id int, hlc text);
  CREATE TRIGGER causal_message_stored AFTER INSERT ON lookalike FOR EACH ROW
    EXECUTE FUNCTION causal.message_stored('conversation_id', 'notify');
  INSERT INTO lookalike VALUES (1, 'x')")
is "$state" 42501 "a login cannot put causal.message_stored() on a table of its own"
no_crash "message_stored() on a temp table"

# A superuser may attach them anywhere: the trigger checks the types itself.
state=$(sqlstate postgres "
  CREATE TEMP TABLE lookalike (conversation_id int, msg_id uuid, hlc causal.hlc, deps causal.hlc[],
                               crdb_region text, epoch text, deleted_at causal.hlc);
  CREATE TRIGGER causal_message BEFORE INSERT ON lookalike FOR EACH ROW
    EXECUTE FUNCTION causal.message_trigger('conversation_id', 'quiet');
  INSERT INTO lookalike (conversation_id, epoch) VALUES (1, 'x')")
is "$state" 42804 "message_trigger() on a table whose epoch is text: 42804, not a crash"
out=$(sql postgres -c "
  CREATE TEMP TABLE lookalike (conversation_id int, msg_id uuid, hlc causal.hlc, deps causal.hlc[],
                               crdb_region text, epoch text, deleted_at causal.hlc);
  CREATE TRIGGER causal_message BEFORE INSERT ON lookalike FOR EACH ROW
    EXECUTE FUNCTION causal.message_trigger('conversation_id', 'quiet');
  INSERT INTO lookalike (conversation_id, epoch) VALUES (1, '12345')")
ok "$([[ ! $out =~ [0-9]{9,} ]]; echo $?)" "the error names no heap address"
diag "$(head -n 1 <<<"$out")"
no_crash "message_trigger() on a table with a text epoch"

is "$(sqlstate owner "ALTER TABLE chat.messages ALTER COLUMN epoch TYPE text")" 42501 \
   "the owner cannot change the type of pg_causal's columns"
state=$(sqlstate postgres "BEGIN; ALTER TABLE chat.messages ALTER COLUMN epoch TYPE text USING epoch::text;
                           INSERT INTO chat.messages (conversation_id, body) VALUES (1, 'after the type change')")
is "$state" 42804 "after a superuser changed the epoch's type an insert fails with 42804, not a crash"
no_crash "an insert after ALTER COLUMN TYPE"
messages_kept "column types"

# ---- who may enable (enable.t has the attacks on enable() itself) ------------

sql owner >/dev/null <<'SQL'
CREATE TABLE chat.older (conversation_id bigint, body text);
INSERT INTO chat.older VALUES (1, 'from before pg_causal'), (2, 'also');
SQL
is "$(sqlstate admin "SELECT causal.enable('chat.older', 'conversation_id')")" ok \
   "a causal_admin member who is not a superuser may enable (and re-enable) a table"
is "$(sqlstate intruder "SELECT causal.enable('chat.older', 'conversation_id')")" 42501 \
   "a login that is not causal_admin may not"
is "$(sqlstate owner "SELECT causal.disable('chat.older')")" 42501 "nor may it disable one"
is "$(sqlstate admin "SELECT causal.disable('chat.older')")" ok "the causal_admin member may disable it"
is "$(su_sql -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'chat.older'::regclass AND tgname LIKE 'causal\\_%'")" 0 \
   "... which drops pg_causal's triggers"
is "$(sqlstate admin "SELECT causal.enable('chat.older', 'conversation_id')")" ok "... and enable it again"
is "$(sqlstate postgres "SELECT causal.disable('pg_class')")" 55000 "disable() refuses a table that is not a message table"
is "$(sqlstate postgres "SELECT causal.enable('pg_catalog.pg_authid', 'rolname')")" 42501 \
   "enable() refuses a system catalog"
ran_as_superuser "enable() by causal_admin"
no_escalation "enable() by causal_admin"

# ---- a database owner's search_path ---------------------------------------

sql dbowner >/dev/null <<'SQL'
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE FUNCTION evil.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    INSERT INTO public.ran_as_superuser (what, role)
         VALUES ('evil.= in ' || pg_catalog.current_setting('application_name'), current_user);
    EXECUTE 'ALTER ROLE dbowner SUPERUSER';
  END IF;
  RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE FUNCTION evil.textne(a text, b text) RETURNS boolean LANGUAGE sql AS
  'SELECT NOT evil.texteq(a, b)';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.textne);
ALTER DATABASE tenants SET search_path = evil, pg_catalog, public;
SQL
# Every session and worker of this database starts with that path from now
# on: the liveness worker after the next restart, every new session at once.
LIVENESS_BEAT=$(su_sql -c "$LIVENESS_BEAT_SQL")
instance_stop sec-tenants && instance_start sec-tenants || bail "could not restart"
liveness_rounds_done
ok $? "the liveness worker ran a whole round with the database's search_path (its beat moved twice)"
sql postgres -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (1, 'ana', 'by a superuser')" >/dev/null
MESSAGES=$((MESSAGES + 1))
PGAPPNAME=causalctl build/causalctl status --region "test-east=host=$CAUSAL_WORK port=24380 user=postgres dbname=tenants" >/dev/null 2>&1
PGAPPNAME=causalctl build/causalctl verify --region "test-east=host=$CAUSAL_WORK port=24380 user=postgres dbname=tenants" >/dev/null 2>&1
ran_as_superuser "the database's search_path (liveness worker, a superuser's insert, causalctl)"
no_escalation "the database's search_path"
sql dbowner -c "ALTER DATABASE tenants RESET search_path" >/dev/null
su_sql -c "DELETE FROM public.ran_as_superuser; ALTER ROLE dbowner NOSUPERUSER" >/dev/null

# A database owner's settings can stall a region, never lose its messages:
# the liveness worker's heartbeats go on in a database its owner made read
# only, and a replicated row that cannot be stored, nor quarantined, is
# raised (the apply worker retries it later), never dropped.
sql dbowner -c "ALTER DATABASE tenants SET default_transaction_read_only = on" >/dev/null
LIVENESS_BEAT=$(su_sql -c "$LIVENESS_BEAT_SQL")
instance_stop sec-tenants && instance_start sec-tenants || bail "could not restart"
liveness_rounds_done
ok $? "the liveness worker still beats in a database whose owner made it read only"
sql dbowner -c "SET default_transaction_read_only = off" -c "ALTER DATABASE tenants RESET default_transaction_read_only" >/dev/null
su_sql >/dev/null <<'SQL'
CREATE FUNCTION public.full_quarantine() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'the quarantine is full' USING ERRCODE = '53100'; END $$;
CREATE TRIGGER quarantine_full BEFORE INSERT ON causal.quarantine FOR EACH ROW EXECUTE FUNCTION public.full_quarantine();
ALTER TABLE causal.quarantine ENABLE ALWAYS TRIGGER quarantine_full;
SQL
is "$(sqlstate postgres "SET session_replication_role = replica;
  INSERT INTO chat.messages (msg_id, conversation_id, hlc, deps, crdb_region, epoch, sender, body)
  VALUES (gen_random_uuid(), 1, NULL, '{}', 'elsewhere', 0, 'bo', 'nowhere to go')")" 53100 \
   "a replicated row that can neither be stored nor quarantined is raised, not dropped"
su_sql -c "DROP TRIGGER quarantine_full ON causal.quarantine" >/dev/null

# ---- a schema or publication made before CREATE EXTENSION ------------------

su_sql -c "CREATE DATABASE squatted OWNER dbowner" >/dev/null
psql -X -q -h "$CAUSAL_WORK" -p 24380 -U dbowner -d squatted >/dev/null 2>&1 <<'SQL'
CREATE SCHEMA causal;
GRANT USAGE ON SCHEMA causal TO PUBLIC;
CREATE FUNCTION causal.require_newer_epoch(region text, epoch bigint, current_epoch text) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'ALTER ROLE dbowner SUPERUSER'; END $$;
SQL
state=$(psql -X -q -h "$CAUSAL_WORK" -p 24380 -U postgres -d squatted -v VERBOSITY=verbose \
          -c "CREATE EXTENSION pg_causal" 2>&1 | sed -nE 's/^ERROR:  ([0-9A-Z]{5}).*/\1/p')
is "$state" 42P06 "CREATE EXTENSION refuses a schema causal it did not create"
psql -X -q -h "$CAUSAL_WORK" -p 24380 -U postgres -d squatted \
  -c "SELECT causal.fence_region('nowhere', 1)" >/dev/null 2>&1
no_escalation "a schema causal made by the database owner"
su_sql -c "CREATE DATABASE published OWNER dbowner" >/dev/null
psql -X -q -h "$CAUSAL_WORK" -p 24380 -U dbowner -d published -c "CREATE PUBLICATION causal_mesh" >/dev/null 2>&1
state=$(psql -X -q -h "$CAUSAL_WORK" -p 24380 -U postgres -d published -v VERBOSITY=verbose \
          -c "CREATE EXTENSION pg_causal" -c "CREATE TABLE talk (conversation_id int, body text)" \
          -c "SELECT causal.enable('talk', 'conversation_id')" 2>&1 | sed -nE 's/^ERROR:  ([0-9A-Z]{5}).*/\1/p')
is "$state" 42710 "enable() refuses a publication causal_mesh that a non-superuser owns"
is "$(psql -X -q -At -h "$CAUSAL_WORK" -p 24380 -U postgres -d published \
        -c "SELECT count(*) FROM pg_publication_rel WHERE prrelid = 'talk'::regclass")" 0 \
   "the owner's publication got no message table"
published_dsn="host=$CAUSAL_WORK port=24380 user=postgres dbname=published"
run_init=$(build/causalctl init --region "a=$published_dsn" --region "b=$published_dsn" 2>&1)
is "$?" 4 "causalctl init refuses it too (exit 4, nothing changed)"
ok "$([[ $run_init == *"publication causal_mesh belongs to a role that is not a superuser"* ]]; echo $?)" \
   "and says why"

# ---- the fence ---------------------------------------------------------------

su_sql -c "SELECT causal.fence_region('test-east', 1)" >/dev/null
sql owner >/dev/null <<'SQL'
CREATE FUNCTION chat.never(a text, b text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR chat.= (LEFTARG = text, RIGHTARG = text, FUNCTION = chat.never);
SQL
is "$(sqlstate owner "SET search_path = chat, pg_catalog; INSERT INTO chat.messages (conversation_id, body) VALUES (1, 'into a fenced region')")" \
   5C001 "a writer's own = operator does not get a write past the fence"
is "$(su_sql -c "SELECT count(*) FROM chat.messages WHERE body = 'into a fenced region'")" 0 "nothing was written"
su_sql -c "SELECT causal.unfence_region('test-east', 2)" >/dev/null

# ---- forged history ----------------------------------------------------------

sql owner >/dev/null <<'SQL'
CREATE TABLE chat.fired (what text, role name);
GRANT INSERT ON chat.fired TO PUBLIC;
CREATE FUNCTION chat.on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO chat.fired VALUES (TG_NAME, current_user); RETURN NULL; END $$;
SQL
for ddl in "ALTER TABLE chat.messages DISABLE TRIGGER causal_message" \
           "ALTER TABLE chat.messages DISABLE TRIGGER USER" \
           "ALTER TABLE chat.messages ENABLE TRIGGER causal_message" \
           "ALTER TABLE chat.messages DISABLE TRIGGER causal_message_stored" \
           "DROP TRIGGER causal_message ON chat.messages"; do
  is "$(sqlstate owner "$ddl")" 42501 "the owner cannot: $ddl"
done
is "$(sqlstate owner "ALTER TABLE chat.messages RENAME COLUMN hlc TO stamp")" 42P16 \
   "the owner cannot rename pg_causal's columns"
is "$(sqlstate owner "ALTER TABLE chat.messages ADD COLUMN edited boolean DEFAULT false")" ok \
   "the owner may still add a column of its own"
is "$(sqlstate owner "CREATE TRIGGER audit AFTER INSERT ON chat.messages FOR EACH ROW EXECUTE FUNCTION chat.on_update()")" ok \
   "and an ordinary trigger, which fires on local writes only"
sql owner -c "DROP TRIGGER audit ON chat.messages" >/dev/null
sql owner >/dev/null <<'SQL'
CREATE TABLE chat.parent (conversation_id bigint, body text);
CREATE TABLE chat.kid () INHERITS (chat.parent);
SQL
is "$(sqlstate postgres "SELECT causal.enable('chat.parent', 'conversation_id')")" 42P16 \
   "enable() refuses a table with inheritance children (their rows would bypass the trigger)"
is "$(sqlstate postgres "SELECT causal.enable('chat.kid', 'conversation_id')")" 42P16 "and an inheritance child"

# A table a superuser put outside the shape (the owner could not: shape.t)
# keeps its rows stored as its owner. The owner's code runs in replica mode
# there; the guard runs there too. A CHECK on one table that, in that mode,
# tries to switch off another table's trigger is refused, and the row that
# fired it quarantined.
sql owner >/dev/null <<'SQL'
CREATE TABLE chat.lever (conversation_id bigint, body text);
CREATE FUNCTION chat.flip(body text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('session_replication_role') = 'replica' THEN
    ALTER TABLE chat.messages DISABLE TRIGGER causal_message;
  END IF;
  RETURN true;
END $$;
SQL
su_sql -c "SELECT causal.enable('chat.lever', 'conversation_id')" >/dev/null
su_sql -c "ALTER TABLE chat.lever ADD CONSTRAINT flips CHECK (chat.flip(body)) NOT VALID" >/dev/null
sqlstate postgres "SET session_replication_role = replica;
  INSERT INTO chat.lever (msg_id, conversation_id, hlc, deps, crdb_region, epoch, body)
  VALUES (gen_random_uuid(), 1, causal.hlc_now(), '{}', 'elsewhere', 0, 'pull')" >/dev/null
is "$(su_sql -c "SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'chat.messages'::regclass AND tgname = 'causal_message'")" A \
   "the owner's code running in replica mode cannot switch off another message table's trigger"
is "$(su_sql -c "SELECT count(*) FROM causal.quarantine WHERE row_data->>'body' = 'pull'")" 1 \
   "the row whose CHECK tried is quarantined"
su_sql -c "ALTER TABLE chat.lever DROP CONSTRAINT flips" >/dev/null

# An owner's trigger on one table cannot use pg_causal's write on it to
# write another message table, nor skip pg_causal's write.
sql owner >/dev/null <<'SQL'
CREATE FUNCTION chat.hijack() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE chat.messages SET deleted_at = NEW.deleted_at, body = 'overwritten' WHERE msg_id = NEW.msg_id;
  RETURN NULL;
END $$;
SQL
victim=$(su_sql -c "SELECT msg_id FROM chat.messages WHERE body = 'message 5'")
sql owner -c "INSERT INTO chat.lever (msg_id, conversation_id, body) VALUES ('$victim', 1, 'decoy');
              CREATE TRIGGER a_hijack BEFORE INSERT ON chat.lever FOR EACH ROW EXECUTE FUNCTION chat.hijack();" >/dev/null
is "$(sqlstate owner "DELETE FROM chat.lever WHERE msg_id = '$victim'")" 42501 \
   "a trigger that rewrites another table's message while pg_causal writes a tombstone makes the DELETE fail"
is "$(su_sql -c "SELECT body, deleted_at IS NULL FROM chat.messages WHERE msg_id = '$victim'")" "message 5|t" \
   "the other table's message is as it was"
sql owner -c "ALTER TABLE chat.lever DISABLE TRIGGER a_hijack" >/dev/null
sql owner -c "CREATE FUNCTION chat.swallow() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
              CREATE TRIGGER a_swallow BEFORE INSERT ON chat.lever FOR EACH ROW EXECUTE FUNCTION chat.swallow();" >/dev/null
is "$(sqlstate owner "DELETE FROM chat.lever WHERE msg_id = '$victim'")" 42501 \
   "a trigger that skips the tombstone makes the DELETE fail (it would delete here alone)"
is "$(su_sql -c "SELECT count(*) FROM chat.lever WHERE msg_id = '$victim'")" 1 "and the message stays"

# The apply path: a row whose hlc is impossibly far ahead is quarantined.
state=$(sqlstate postgres "SET session_replication_role = replica;
  INSERT INTO chat.messages (msg_id, conversation_id, hlc, deps, crdb_region, epoch, sender, body)
  VALUES (gen_random_uuid(), 1, '281474976710655.65535@65535', '{}', 'elsewhere', 0, 'mallory', 'last forever')")
is "$(su_sql -c "SELECT count(*) FROM chat.messages WHERE sender = 'mallory'")" 0 \
   "a replicated row with the largest hlc is not kept as a message"
is "$(su_sql -c "SELECT count(*) FROM causal.quarantine WHERE row_data->>'sender' = 'mallory'")" 1 "it is quarantined"

# The apply path writes as the table's owner: the owner's code (a CHECK
# constraint a superuser added) never runs with the apply worker's rights.
su_sql -c "ALTER TABLE chat.older ADD CONSTRAINT watched CHECK (chat.spy('apply check ' || body)) NOT VALID" >/dev/null
su_sql -c "SET session_replication_role = replica;
  INSERT INTO chat.older (msg_id, conversation_id, hlc, deps, crdb_region, epoch, body)
  VALUES (gen_random_uuid(), 1, causal.hlc_now(), '{}', 'elsewhere', 0, 'replicated')" >/dev/null
is "$(su_sql -c "SELECT count(*) FROM chat.older WHERE body = 'replicated'")" 1 "a replicated row is stored"
# The owner's code cannot stop replication either: whatever it raises for a
# row (here its own SQLSTATE) sends that row to the quarantine.
sql owner >/dev/null <<'SQL'
CREATE FUNCTION chat.refuse(body text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF body = 'blocked' THEN RAISE EXCEPTION 'the owner refuses' USING ERRCODE = 'P0001'; END IF;
  -- a SQLSTATE that says "try again later", which would stall the worker
  IF body = 'deadlocked' THEN RAISE EXCEPTION 'the owner refuses again' USING ERRCODE = '40P01'; END IF;
  RETURN true;
END $$;
SQL
su_sql -c "ALTER TABLE chat.older ADD CONSTRAINT refusing CHECK (chat.refuse(body)) NOT VALID" >/dev/null
is "$(sqlstate postgres "SET session_replication_role = replica;
  INSERT INTO chat.older (msg_id, conversation_id, hlc, deps, crdb_region, epoch, body)
  VALUES (gen_random_uuid(), 1, causal.hlc_now(), '{}', 'elsewhere', 0, 'blocked')")" ok \
   "an error the owner's code raises does not reach the apply worker"
is "$(su_sql -c "SELECT reason FROM causal.quarantine WHERE row_data->>'body' = 'blocked'")" "the owner refuses" \
   "the row it refused is quarantined, with the reason"
is "$(sqlstate postgres "SET session_replication_role = replica;
  INSERT INTO chat.older (msg_id, conversation_id, hlc, deps, crdb_region, epoch, body)
  VALUES (gen_random_uuid(), 1, causal.hlc_now(), '{}', 'elsewhere', 0, 'deadlocked')")" ok \
   "also when its code raises a SQLSTATE that a retry could fix"
ran_as_superuser "the apply path"
no_escalation "the apply path"
no_crash "the forgeries"
messages_kept "the forgeries"

# ---- TRUNCATE and DELETE ---------------------------------------------------

is "$(sqlstate owner "TRUNCATE chat.messages")" 0A000 "TRUNCATE of a message table is refused (it would replicate)"
is "$(sqlstate postgres "TRUNCATE chat.messages")" 0A000 "also for a superuser"
is "$(su_sql -c "SELECT pubtruncate OR pubdelete FROM pg_publication WHERE pubname = 'causal_mesh'")" f \
   "causal_mesh publishes neither TRUNCATE nor DELETE"
sql owner >/dev/null <<'SQL'
INSERT INTO chat.messages (msg_id, conversation_id, sender, body)
     VALUES ('00000000-0000-7000-8000-00000000d1e7', 7, 'bo', 'to be deleted');
INSERT INTO chat.messages (conversation_id, sender, body, deps)
     SELECT 7, 'bo', 'a reply', ARRAY[hlc] FROM chat.messages WHERE body = 'to be deleted';
SQL
is "$(sqlstate owner "DELETE FROM chat.messages WHERE msg_id = '00000000-0000-7000-8000-00000000d1e7'")" ok \
   "the owner deletes a message"
is "$(su_sql -c "SELECT body IS NULL OR body = '', deleted_at IS NOT NULL FROM chat.messages
                  WHERE msg_id = '00000000-0000-7000-8000-00000000d1e7'")" "t|t" \
   "a deleted message is a tombstone: its body is gone, its msg_id and hlc stay"
is "$(su_sql -c "SELECT string_agg(h.delivered::text, ',' ORDER BY h.position)
                  FROM (SELECT causal.merge(msg_id, hlc, deps, crdb_region, epoch, copies) m FROM chat.messages
                         WHERE conversation_id = 7) c, causal.unnest(c.m) h")" "true,true" \
   "the reply to it stays delivered, in the same order"

# The owner's own trigger cannot restamp what pg_causal writes: an ordinary
# BEFORE INSERT trigger that sorts before pg_causal's and rewrites the hlc
# changes nothing on a local insert (stamped after it), and makes a DELETE,
# whose tombstone pg_causal writes, fail rather than carry a forged stamp.
sql owner >/dev/null <<'SQL'
CREATE FUNCTION chat.forge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.hlc := '1.00000@0'; NEW.crdb_region := 'nowhere'; RETURN NEW; END $$;
CREATE TRIGGER a_forge BEFORE INSERT ON chat.messages FOR EACH ROW EXECUTE FUNCTION chat.forge();
INSERT INTO chat.messages (msg_id, conversation_id, sender, body)
     VALUES ('00000000-0000-7000-8000-00000000f0f0', 8, 'bo', 'forged?');
SQL
is "$(su_sql -c "SELECT hlc::text <> '1.00000@0' AND crdb_region = 'test-east' FROM chat.messages
                  WHERE msg_id = '00000000-0000-7000-8000-00000000f0f0'")" t \
   "an owner's trigger does not forge a local message's stamp"
is "$(sqlstate owner "DELETE FROM chat.messages WHERE msg_id = '00000000-0000-7000-8000-00000000f0f0'")" 42501 \
   "nor a tombstone's: the DELETE fails"
is "$(su_sql -c "SELECT deleted_at IS NULL AND body = 'forged?' FROM chat.messages
                  WHERE msg_id = '00000000-0000-7000-8000-00000000f0f0'")" t "and the message is as it was"
sql owner -c "DROP TRIGGER a_forge ON chat.messages" >/dev/null

# ---- DROP EXTENSION --------------------------------------------------------

is "$(sqlstate postgres "DROP EXTENSION pg_causal CASCADE")" 2BP01 \
   "DROP EXTENSION ... CASCADE refuses while message tables exist"
is "$(su_sql -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'chat.messages'::regclass AND attname IN ('hlc', 'deps')")" 2 \
   "the message tables keep their hlc and deps columns"

# ---- what others can see and lock ------------------------------------------

is "$(sql intruder -c "SELECT count(*) FROM causal.stat_tables")" 0 "causal.stat_tables shows a login none of the tables it cannot read"
is "$(sql owner -c "SELECT count(*) FROM causal.stat_tables WHERE relid = 'chat.messages'::regclass")" 1 "the owner sees its own"
is "$(sqlstate intruder "SELECT * FROM causal.catch_up(0, '1', NULL)")" 42P01 "catch_up on no table: 42P01, not XX000"
( su_sql -c "BEGIN; LOCK TABLE chat.messages; SELECT pg_sleep(4)" >/dev/null ) &
locker=$!
for _ in $(seq 100); do
  [ "$(su_sql -c "SELECT count(*) FROM pg_locks WHERE relation = 'chat.messages'::regclass
                   AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
  sleep 0.05
done
is "$(sqlstate intruder "SET lock_timeout = '500ms'; SELECT * FROM causal.catch_up('chat.messages', '1', NULL)")" 42501 \
   "catch_up checks the privilege before it waits for a lock on the table"
wait $locker
# history's result type is the table's row type, which PostgreSQL resolves
# (and locks, as it does for a plain SELECT the role may not run) while it
# parses the call: the check is that it reads nothing.
is "$(sqlstate intruder "SELECT * FROM causal.history(NULL::chat.messages, '1')")" 42501 \
   "history without SELECT on the table: 42501"
is "$(sqlstate intruder "SELECT * FROM causal.history(NULL::causal.regions, '1')")" 55000 \
   "history of a table that is not a message table (pg_causal's own): 55000"
is "$(sqlstate intruder "SELECT '01.00000@1'::causal.hlc")" 22P02 "hlc text with a leading zero is refused"
is "$(sqlstate intruder "SELECT '1.00000@07'::causal.hlc")" 22P02 "so is a node id with one"

# PostgreSQL 15 lets any login LISTEN on any channel: a message table's
# NOTIFY says nothing any login may not know.
su_sql -c "SELECT causal.enable('chat.messages', 'conversation_id', notify => true)" >/dev/null
listen_out="$(instance_dir "$SEC_INSTANCE")/listen.out"
{ echo 'LISTEN "chat.messages";'; sleep 1.5; echo 'SELECT 1;'; } |
  psql -X -q -At -h "$CAUSAL_WORK" -p "$(instance_port "$SEC_INSTANCE")" -U intruder -d "$SEC_DB" >"$listen_out" 2>&1 &
listener=$!
for _ in $(seq 100); do  # until its LISTEN has run
  [ "$(su_sql -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'intruder'
                   AND state = 'idle' AND query LIKE 'LISTEN%'")" -gt 0 ] && break; sleep 0.05
done
sql owner -c "INSERT INTO chat.messages (conversation_id, sender, body) VALUES (424242, 'ana', 'private')" >/dev/null
MESSAGES=$((MESSAGES + 1))
secret_hlc=$(su_sql -c "SELECT hlc FROM chat.messages WHERE conversation_id = 424242")
wait $listener
ok "$(grep -q 'notification "chat.messages" with payload "message"' "$listen_out"; echo $?)" \
   "a login with no rights on the table that LISTENs is told a message was written ($(head -c 120 "$listen_out"))"
ok "$(! grep -qE "424242|$secret_hlc" "$listen_out"; echo $?)" "... and nothing of it: no conversation key, no hlc"
su_sql -c "SELECT causal.enable('chat.messages', 'conversation_id')" >/dev/null

# ---- causalctl verify reads only message tables -----------------------------

sql owner >/dev/null <<'SQL'
CREATE FUNCTION chat.fake() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE VIEW chat.bait AS SELECT conversation_id, msg_id, hlc, deps, crdb_region, epoch
  FROM chat.messages WHERE chat.spy('a view read by verify');
CREATE TRIGGER causal_message INSTEAD OF INSERT ON chat.bait FOR EACH ROW EXECUTE FUNCTION chat.fake();
CREATE TYPE chat.room AS ENUM ('lobby', 'kitchen');
CREATE FUNCTION chat.room_text(r chat.room) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM chat.spy('a cast to text'); RETURN 'room'; END $$;
CREATE CAST (chat.room AS text) WITH FUNCTION chat.room_text(chat.room);
CREATE TABLE chat.rooms (room chat.room, body text);
SQL
# A conversation of the owner's type, whose cast to text is the owner's: no
# message table (shape.t), so nothing of pg_causal's reads it.
is "$(sqlstate postgres "SELECT causal.enable('chat.rooms', 'room')")" 42501 \
   "enable() refuses a conversation column of the owner's enum, which has a cast of the owner's"
# The tables a superuser put outside the shape above, back within it.
su_sql -c "ALTER TABLE chat.older DROP CONSTRAINT watched, DROP CONSTRAINT refusing" >/dev/null
run_verify=$(build/causalctl verify --region "test-east=host=$CAUSAL_WORK port=24380 user=postgres dbname=tenants" 2>&1)
ok "$([[ $run_verify == converged* ]]; echo $?)" "causalctl verify checks the message tables ($run_verify)"
ran_as_superuser "causalctl verify"
no_escalation "causalctl verify"
# A conversation column with a name that is not ASCII, and a table a
# superuser broke after enable(): verify reads the first, reports the
# second, and goes on with the others.
sql owner -c 'CREATE TABLE chat."gespräche" ("gespräch" text, body text)' >/dev/null
su_sql -c "SELECT causal.enable('chat.\"gespräche\"', 'gespräch')" >/dev/null
sql owner -c "INSERT INTO chat.\"gespräche\" (\"gespräch\", body) VALUES ('küche', 'hallo')" >/dev/null
su_sql -c "ALTER TABLE chat.older RENAME COLUMN conversation_id TO thread" >/dev/null
run_verify=$(build/causalctl verify --region "test-east=host=$CAUSAL_WORK port=24380 user=postgres dbname=tenants" 2>&1)
verify_rc=$?
is "$verify_rc" 1 "verify with a broken table: exit 1, not 3"
ok "$([[ $run_verify == *"chat.older cannot be verified: it must keep its column conversation_id"* ]]; echo $?)" \
   "it names the broken table and why"
ok "$([[ $run_verify == *"conversation histories and the fencing state agree"* ]]; echo $?)" \
   "and verifies the others, the non-ASCII one included ($(tail -n 1 <<<"$run_verify"))"
want=$(su_sql -c "SELECT (SELECT count(DISTINCT conversation_id) FROM chat.messages) + 1
                        + (SELECT count(DISTINCT conversation_id) FROM chat.lever)")
is "$(build/causalctl verify --json --region "test-east=host=$CAUSAL_WORK port=24380 user=postgres dbname=tenants" |
      grep -o '"conversations": [0-9]*')" "\"conversations\": $want" \
   "every conversation of chat.messages, chat.lever and chat.gespräche is verified"
no_crash "every attack"
messages_kept "every attack"
done_testing
