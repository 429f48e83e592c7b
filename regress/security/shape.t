#!/usr/bin/env bash
# Class: what a table's owner attaches to its message table, judged by the
# DDL guard against the shape of a message table (extension/table/table_shape.hpp).
# One test per construct PostgreSQL 15 lets an owner attach to a table:
# refused with the reason, or allowed because it runs only as the owner or
# in the owner's (and its writers') own sessions; for those, a replicated
# row and a local one show where it runs (regress/security/mesh.t does the
# same across real regions, in the replication workers and the relay). Then
# the guard's own rules: it judges what a command touched, and what a
# command does to pg_causal's columns.
set -u
cd "$(dirname "$0")/../.."
source regress/lib/cluster.sh
source regress/lib/tap.sh
source regress/security/lib.sh
trap 'instance_stop sec-shape >/dev/null 2>&1' EXIT
sec_start sec-shape 24388 || bail "could not start an instance"
log="$(instance_dir sec-shape)/server.log"

su_sql >/dev/null <<'SQL' || bail "could not set up"
CREATE EXTENSION pg_causal;
SELECT causal.register_region('test-east', 1);
CREATE SCHEMA app AUTHORIZATION owner;
GRANT USAGE ON SCHEMA app TO intruder;
GRANT CREATE ON DATABASE tenants TO owner;
CREATE TABLE public.ran_as_superuser (what text, role name, at timestamptz DEFAULT now());
GRANT INSERT ON public.ran_as_superuser TO PUBLIC;
SQL
spy_in app owner
sql owner >/dev/null <<'SQL'
CREATE TABLE app.talk (conversation_id bigint, sender text NOT NULL DEFAULT '', body text DEFAULT '');
CREATE FUNCTION app.same(a text, b text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM app.spy('an operator'); RETURN a = b; END $$;
CREATE OPERATOR app.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = app.same);
CREATE FUNCTION app.key(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM app.spy('an immutable function'); RETURN t; END $$;
CREATE DOMAIN app.tagged AS text CHECK (app.spy('a domain'));
CREATE TYPE app.mood AS ENUM ('happy', 'sad');
CREATE FUNCTION app.mood_json(m app.mood) RETURNS json LANGUAGE plpgsql AS
  $$ BEGIN PERFORM app.spy('a cast to json'); RETURN '"x"'; END $$;
CREATE CAST (app.mood AS json) WITH FUNCTION app.mood_json(app.mood);
CREATE TYPE app.pair AS (a text, b text);
CREATE TYPE app.span AS RANGE (subtype = float8);
CREATE SEQUENCE app.elsewhere;
CREATE TABLE app.people (id bigint PRIMARY KEY);
SQL
su_sql -c "SELECT causal.enable('app.talk', 'conversation_id')" >/dev/null || bail "could not enable"
fit() { su_sql -c "SELECT coalesce((SELECT problem FROM causal.message_table_problem('app.talk', 'conversation_id')), 'fit')"; }
is "$(fit)" fit "a plain message table is within the shape"

# refused STATE DDL WHAT: the owner's DDL is refused with STATE, and the
# table stays within the shape.
refused() {
  is "$(sqlstate owner "$2")" "$1" "refused ($1): $3"
}

# ---- triggers and rules -------------------------------------------------------
sql owner -c "CREATE FUNCTION app.on_row() RETURNS trigger LANGUAGE plpgsql AS
                \$\$ BEGIN PERFORM app.spy('a trigger'); RETURN NEW; END \$\$" >/dev/null
refused 42501 "CREATE TRIGGER t BEFORE INSERT ON app.talk FOR EACH ROW EXECUTE FUNCTION app.on_row();
               ALTER TABLE app.talk ENABLE ALWAYS TRIGGER t" "a trigger enabled ALWAYS (it would fire in the replication workers)"
refused 42501 "CREATE TRIGGER t BEFORE INSERT ON app.talk FOR EACH ROW EXECUTE FUNCTION app.on_row();
               ALTER TABLE app.talk ENABLE REPLICA TRIGGER t" "a trigger enabled REPLICA"
refused 42501 "CREATE RULE r AS ON INSERT TO app.talk DO ALSO SELECT app.spy('a rule')" \
        "a rule (it would rewrite the relay's and enable()'s writes)"
refused 42501 "CREATE RULE r AS ON INSERT TO app.talk DO INSTEAD NOTHING" "a rule that swallows writes"
refused 42501 "CREATE RULE r AS ON UPDATE TO app.talk DO ALSO SELECT app.spy('a rule')" "a rule on UPDATE"

# ---- defaults, generated columns -----------------------------------------------
refused 42501 "ALTER TABLE app.talk ADD COLUMN x text DEFAULT app.key('x')" "a default calling the owner's function"
refused 42501 "ALTER TABLE app.talk ADD COLUMN x text DEFAULT query_to_xml('SELECT app.spy(''query_to_xml'')', true, false, '')::text" \
        "a default calling a built-in that runs SQL given as a string (query_to_xml)"
refused 42501 "ALTER TABLE app.talk ADD COLUMN x text DEFAULT table_to_xml('app.people', true, false, '')::text" \
        "a default calling a built-in that reads a table it is given (table_to_xml, STABLE)"
refused 42501 "ALTER TABLE app.talk ADD COLUMN x bigint DEFAULT nextval('app.elsewhere')" \
        "a default drawing from a sequence another table owns"
refused 42501 "ALTER TABLE app.talk ADD COLUMN x text DEFAULT current_setting('causal.region')" \
        "a default calling a built-in outside the list (current_setting)"
refused 42501 "ALTER TABLE app.talk ADD COLUMN x text GENERATED ALWAYS AS (app.key(body)) STORED" \
        "a generated column calling the owner's function"
is "$(sqlstate owner "ALTER TABLE app.talk ADD COLUMN sent_at timestamptz NOT NULL DEFAULT now(),
                      ADD COLUMN tag uuid DEFAULT gen_random_uuid(), ADD COLUMN seen timestamptz DEFAULT clock_timestamp(),
                      ADD COLUMN edited boolean DEFAULT false, ADD COLUMN who text DEFAULT CURRENT_USER,
                      ADD COLUMN length int GENERATED ALWAYS AS (length(body)) STORED")" ok \
   "allowed: defaults now(), gen_random_uuid(), clock_timestamp(), a constant, CURRENT_USER; a generated length(body)"
is "$(sqlstate owner "ALTER TABLE app.talk ADD COLUMN seq bigserial, ADD COLUMN n bigint GENERATED BY DEFAULT AS IDENTITY")" ok \
   "allowed: a serial column and an identity column (their sequences belong to the table)"
is "$(su_sql -c "SELECT has_sequence_privilege('causal_replicator', pg_get_serial_sequence('app.talk', 'seq'), 'USAGE')")" t \
   "... and the replication role may draw from the serial column's sequence (for a sender that lacks the column)"

# ---- constraints, indexes -------------------------------------------------------
refused 42501 "ALTER TABLE app.talk ADD CHECK (app.key(body) IS NOT NULL)" "a CHECK calling the owner's function"
refused 42501 "ALTER TABLE app.talk ADD CHECK (NOT (body OPERATOR(app.===) 'x'))" "a CHECK with the owner's operator"
refused 42501 "ALTER TABLE app.talk ADD CHECK (now() > '2000-01-01')" "a CHECK calling a function that is not immutable"
refused 42501 "CREATE INDEX ON app.talk (app.key(sender))" "an index on the owner's function"
refused 42501 "CREATE INDEX ON app.talk (sender) WHERE app.key(sender) <> ''" "a partial index whose predicate calls it"
# CREATE INDEX CONCURRENTLY commits the index before the guard can judge
# it: refused, it stays behind invalid (as after any failure of it), and the
# table is outside the shape until its owner drops it: its rows are then
# stored as the owner, never by PostgreSQL's own insert.
refused 42501 "CREATE INDEX CONCURRENTLY talk_bad ON app.talk (app.key(sender))" \
        "an index built CONCURRENTLY on the owner's function"
ok "$([[ $(fit) == *"index app.talk_bad uses function app.key(text)"* ]]; echo $?)" \
   "... which PostgreSQL leaves behind, invalid: the table is outside the shape ($(fit))"
is "$(sqlstate owner "DROP INDEX app.talk_bad")" ok "... until its owner drops it"
is "$(fit)" fit "... and it is within again"
refused 42P16 "ALTER TABLE app.talk ADD EXCLUDE USING btree (body WITH =)" \
        "an exclusion constraint (rows of different regions would violate it together)"
refused 42P16 "CREATE UNIQUE INDEX ON app.talk (body)" "a unique index without msg_id"
refused 42P16 "ALTER TABLE app.talk ADD FOREIGN KEY (conversation_id) REFERENCES app.people (id)" \
        "a foreign key from the table (the apply worker skips its check: it could hold in one region only)"
is "$(sqlstate owner "ALTER TABLE app.talk ADD CHECK (length(body) < 4000), ADD CHECK (sender <> 'nobody');
                      CREATE INDEX ON app.talk (sender); CREATE INDEX ON app.talk (lower(sender)) WHERE sender <> '';
                      CREATE INDEX ON app.talk USING hash (body)")" ok \
   "allowed: CHECKs on length(body) and a comparison, indexes on sender, lower(sender) (partial), a hash index"
is "$(sqlstate owner "CREATE TABLE app.reactions (msg_id uuid REFERENCES app.talk (msg_id), emoji text)")" ok \
   "allowed: a foreign key from another table to a message's msg_id"
is "$(sqlstate owner "CREATE STATISTICS app.talk_stats ON conversation_id, sender FROM app.talk;
                      CREATE STATISTICS app.talk_expr ON (lower(sender)) FROM app.talk")" ok \
   "allowed: statistics objects (only ANALYZE evaluates them, as the owner)"

# ---- column types ------------------------------------------------------------------
refused 42501 "ALTER TABLE app.talk ADD COLUMN tagged app.tagged" "a column of the owner's domain (its CHECK runs on every value)"
refused 42501 "ALTER TABLE app.talk ADD COLUMN mood app.mood" "a column of the owner's enum (it has a cast to json of the owner's)"
refused 42501 "ALTER TABLE app.talk ADD COLUMN pair app.pair" "a column of the owner's composite type"
refused 42501 "ALTER TABLE app.talk ADD COLUMN span app.span" "a column of the owner's range type"
refused 42501 "ALTER TABLE app.talk ADD COLUMN pairs app.pair[]" "an array of the owner's composite type"
is "$(sqlstate owner "ALTER TABLE app.talk ADD COLUMN tags text[], ADD COLUMN extra jsonb, ADD COLUMN at tstzrange")" ok \
   "allowed: arrays, jsonb and ranges of built-in types"

# ---- the table itself ----------------------------------------------------------------
refused 42P16 "CREATE TABLE app.child () INHERITS (app.talk)" "an inheritance child"
refused 42P16 "CREATE TABLE app.orphanage (LIKE app.talk INCLUDING ALL); ALTER TABLE app.orphanage INHERIT app.talk" \
        "another table made a child"
# A partitioned table of the owner's, which a message table joins as a
# partition: the command names the parent, and judges the table it attaches.
sql owner -c "CREATE TABLE app.small (conversation_id bigint NOT NULL, body text)" >/dev/null
su_sql -c "SELECT causal.enable('app.small', 'conversation_id')" >/dev/null
sql owner -c "CREATE TABLE app.parted (LIKE app.small) PARTITION BY LIST (conversation_id)" >/dev/null
refused 42P16 "ALTER TABLE app.parted ATTACH PARTITION app.small DEFAULT" \
        "a message table attached as a partition (the parent's ALTER TABLE would reach it unjudged)"
state=$(sqlstate owner "ALTER TABLE app.talk SET UNLOGGED")
ok "$([[ $state == 42P16 || $state == 55000 ]]; echo $?)" "refused ($state): an unlogged table (logical replication carries none)"
refused 42P16 "ALTER TABLE app.talk REPLICA IDENTITY FULL" "another replica identity"
sql owner -c "DROP TABLE app.reactions" >/dev/null
refused 42P16 "DROP INDEX app.$(su_sql -c "SELECT relname FROM pg_class WHERE oid = (SELECT indexrelid FROM pg_index
                                            WHERE indrelid = 'app.talk'::regclass AND indisreplident)")" \
        "dropping the msg_id index (the replica identity)"
sql owner -c "CREATE TABLE app.typed OF app.pair" >/dev/null
is "$(sqlstate postgres "SELECT causal.enable('app.typed', 'a')")" 42P16 \
   "enable() refuses a typed table (ALTER TYPE would change it where the guard does not look)"
is "$(sqlstate owner "ALTER TABLE app.talk ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
                      CREATE POLICY readers ON app.talk USING (app.key(sender) IS NOT NULL)")" ok \
   "allowed: row-level security with a policy calling the owner's function"
is "$(sqlstate owner "CREATE PUBLICATION mine FOR TABLE app.talk WITH (publish = 'insert, update, delete')")" ok \
   "allowed: a publication of the owner's own (no link of the mesh takes it)"

# ---- pg_causal's columns ----------------------------------------------------------------
# A collation of the owner's, which DROP COLLATION ... CASCADE takes with
# every column of it.
sql owner -c "CREATE COLLATION app.mine (provider = libc, locale = 'C')" >/dev/null
sql owner -c "CREATE TABLE app.collated (conversation_id text COLLATE app.mine, body text,
                                         crdb_region text COLLATE app.mine)" >/dev/null
is "$(sqlstate postgres "SELECT causal.enable('app.collated', 'conversation_id')")" 42P16 \
   "enable() refuses pg_causal's crdb_region of a collation of the owner's"
sql owner -c "ALTER TABLE app.collated DROP COLUMN crdb_region" >/dev/null
is "$(sqlstate postgres "SELECT causal.enable('app.collated', 'conversation_id')")" ok \
   "... and takes the table with a conversation of that collation (the owner's column)"
refused 42P16 "DROP COLLATION app.mine CASCADE" "dropping the collation, and with it the conversation column"

refused 42P16 "ALTER TABLE app.talk DROP COLUMN hlc, ADD COLUMN hlc causal.hlc GENERATED ALWAYS AS ('1.00000@7') STORED" \
        "hlc dropped and added again as a generated column (every message restamped)"
refused 42P16 "ALTER TABLE app.talk DROP COLUMN deps, ADD COLUMN deps causal.hlc[] NOT NULL DEFAULT '{}'" \
        "deps dropped and added again, as enable() makes it (every message's deps lost)"
refused 42P16 "ALTER TABLE app.talk DROP COLUMN deleted_at, ADD COLUMN deleted_at causal.hlc" \
        "deleted_at dropped and added again (every tombstone undone)"
refused 42P16 "ALTER TABLE app.talk DROP COLUMN conversation_id, ADD COLUMN conversation_id bigint DEFAULT 1" \
        "the conversation dropped and added again"
refused 42P16 "ALTER TABLE app.talk ALTER COLUMN deps DROP NOT NULL" "NOT NULL dropped from deps"
refused 42P16 "ALTER TABLE app.talk ALTER COLUMN msg_id DROP DEFAULT" "msg_id's default dropped"
refused 42P16 "ALTER TABLE app.talk ALTER COLUMN crdb_region SET DEFAULT 'us-east'" "a default given to crdb_region"
refused 42P16 "ALTER TABLE app.talk ALTER COLUMN epoch ADD GENERATED ALWAYS AS IDENTITY" "epoch made an identity column"
refused 42501 "ALTER TABLE app.talk ALTER COLUMN hlc TYPE causal.hlc USING '1000.00000@9'" \
        "hlc rewritten by ALTER COLUMN ... TYPE ... USING (no trigger fires)"
refused 42501 "ALTER TABLE app.talk ALTER COLUMN conversation_id TYPE text" "the conversation's type changed"

# ---- the replication role's rights ----------------------------------------------------------
refused 42501 "REVOKE INSERT ON app.talk FROM causal_replicator" \
        "the replication role's INSERT revoked (the link of every table would stop)"
refused 42501 "REVOKE ALL ON app.talk FROM causal_replicator" "all of its rights revoked"
refused 42501 "REVOKE USAGE ON SCHEMA app FROM causal_replicator" "its USAGE on the table's schema revoked"
refused 42501 "REVOKE USAGE ON SEQUENCE $(su_sql -c "SELECT pg_get_serial_sequence('app.talk', 'seq')") FROM causal_replicator" \
        "its USAGE on a sequence a default draws from revoked"
is "$(sqlstate owner "GRANT SELECT ON app.talk TO intruder; REVOKE SELECT ON app.talk FROM intruder")" ok \
   "allowed: granting and revoking other roles' rights"
is "$(fit)" fit "after all of it, the table is within the shape"

# ---- where the allowed code runs ---------------------------------------------------------------
# The owner's ordinary trigger and its policy's function: in the sessions
# that write and read, as their roles; never for a row that arrives as a
# replicated one (here a superuser's session in replica mode, as the apply
# worker stores it; mesh.t has the real workers).
sql owner >/dev/null <<'SQL'
CREATE TRIGGER audit BEFORE INSERT ON app.talk FOR EACH ROW EXECUTE FUNCTION app.on_row();
GRANT INSERT, SELECT ON app.talk TO intruder;
GRANT USAGE ON SEQUENCE app.talk_seq_seq TO intruder;
CREATE POLICY writers ON app.talk FOR INSERT WITH CHECK (true);
SQL
before=$(grep -c "pg_causal spy: a trigger ran as intruder" "$log")
is "$(sqlstate intruder "INSERT INTO app.talk (conversation_id, body) VALUES (1, 'local')")" ok "a local write"
for _ in $(seq 20); do [ "$(grep -c "pg_causal spy: a trigger ran as intruder" "$log")" -gt "$before" ] && break; sleep 0.1; done
ok "$([ "$(grep -c "pg_causal spy: a trigger ran as intruder" "$log")" -gt "$before" ]; echo $?)" \
   "... fires the owner's trigger as the writing role"
is "$(sqlstate postgres "SET session_replication_role = replica;
  INSERT INTO app.talk (msg_id, conversation_id, hlc, deps, crdb_region, epoch, body)
  VALUES (gen_random_uuid(), 1, causal.hlc_now(), '{}', 'elsewhere', 0, 'replicated')")" ok "a replicated row"
is "$(su_sql -c "SELECT count(*) FROM app.talk WHERE body = 'replicated'")" 1 "... is stored"
is "$(spied "$log" owner | tr ';' '\n' | grep -vc ' ran as intruder$')" 0 \
   "the owner's code ran as the owner and the writing role only ($(spied "$log" owner))"

# ---- the guard judges what a command touched ---------------------------------------------------
sql owner -c "CREATE TABLE app.aside (conversation_id bigint, body text)" >/dev/null
su_sql -c "SELECT causal.enable('app.aside', 'conversation_id')" >/dev/null
su_sql -c "ALTER TABLE app.aside ADD CONSTRAINT watched CHECK (app.spy('a superuser''s constraint')) NOT VALID" >/dev/null
is "$(su_sql -c "SELECT problem IS NOT NULL FROM causal.message_tables() WHERE relid = 'app.aside'::regclass")" t \
   "a superuser left app.aside outside the shape"
is "$(sqlstate owner "CREATE TABLE app.unrelated (a int); ALTER TABLE app.talk ADD COLUMN note text")" ok \
   "its owner's commands on other tables go through"
refused 42501 "ALTER TABLE app.aside ADD COLUMN note text" "its owner's changes to app.aside itself, until a superuser mends it"

no_crash "the shape"
no_escalation "the shape"
done_testing
