-- Causal message tables: causal.enable() turns an ordinary table into one,
-- and the C++ trigger causal.message_trigger() guards both of its write paths.

-- Rows the replication apply path could not take, kept with the reason. The
-- apply path never raises (that would stop replication for good); this is
-- where what it cannot take goes instead. Local to each region.
CREATE TABLE causal.quarantine (
    id             bigserial PRIMARY KEY,
    table_name     text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    reason         text NOT NULL,
    row_data       jsonb NOT NULL
);
COMMENT ON TABLE causal.quarantine IS 'replicated rows the apply path could not take, with the reason';
-- The rows are messages: only causal_admin reads them.
GRANT SELECT, DELETE ON causal.quarantine TO causal_admin;

CREATE FUNCTION causal.new_msg_id() RETURNS uuid
    AS 'MODULE_PATHNAME', 'new_msg_id' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION causal.new_msg_id() IS
    'a time-ordered UUID (version 7): the default msg_id, cheap to index';

CREATE FUNCTION causal.message_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_trigger' LANGUAGE C;
CREATE FUNCTION causal.message_stored() RETURNS trigger
    AS 'MODULE_PATHNAME', 'message_stored' LANGUAGE C;

CREATE FUNCTION causal.table_stats(
    OUT relid regclass,
    OUT local_inserts bigint,
    OUT applied bigint,
    OUT duplicates bigint,
    OUT winners_replaced bigint,
    OUT orphans bigint,
    OUT quarantined bigint,
    OUT offset_rejections bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'table_stats' LANGUAGE C VOLATILE;

CREATE VIEW causal.stat_tables AS
SELECT s.* FROM causal.table_stats() s
 WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = s.relid);
COMMENT ON VIEW causal.stat_tables IS 'per causal message table, counted since the server started';
GRANT SELECT ON causal.stat_tables TO PUBLIC;

-- The columns a causal message table carries, with their types.
CREATE FUNCTION causal.message_columns(OUT name text, OUT type regtype, OUT definition text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  VALUES ('msg_id', 'uuid'::regtype, 'uuid NOT NULL DEFAULT causal.new_msg_id()'),
         ('hlc', 'causal.hlc'::regtype, 'causal.hlc'),
         ('deps', 'causal.hlc[]'::regtype, 'causal.hlc[] NOT NULL DEFAULT ''{}'''),
         ('crdb_region', 'text'::regtype, 'text'),
         ('epoch', 'bigint'::regtype, 'bigint')
$$;

-- The index of `relation` whose key columns are exactly `columns`, if any:
-- enable() recognizes its own indexes by what they index, not by name.
CREATE FUNCTION causal.index_on(relation regclass, columns name[], must_be_unique boolean)
RETURNS regclass LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.indexrelid::regclass FROM pg_index i
   WHERE i.indrelid = relation AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
     AND (i.indisunique OR NOT must_be_unique)
     AND i.indnkeyatts = cardinality(columns)
     AND ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum
               ORDER BY k.n) = columns
   ORDER BY i.indexrelid LIMIT 1
$$;

CREATE FUNCTION causal.enable(
    message_table regclass,
    conversation name,
    notify boolean DEFAULT false)
RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
  rel pg_class;
  qualified text;
  column_type regtype;
  col record;
  msg_id_index regclass;
  this_region text := causal.gateway_region();
  current_epoch bigint;
BEGIN
  SELECT * INTO rel FROM pg_class WHERE oid = message_table;
  qualified := message_table::text;
  IF rel.relkind = 'p' THEN
    RAISE EXCEPTION 'cannot enable partitioned table %', qualified USING ERRCODE = '0A000',
      DETAIL = 'Causal message tables are plain tables in this version.';
  ELSIF rel.relkind <> 'r' THEN
    RAISE EXCEPTION '"%" is not a table', qualified USING ERRCODE = '42809';
  END IF;

  SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
   WHERE a.attrelid = message_table AND a.attname = conversation AND a.attnum > 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'column "%" of table % does not exist', conversation, qualified
      USING ERRCODE = '42703';
  END IF;
  IF conversation IN (SELECT c.name FROM causal.message_columns() c) THEN
    RAISE EXCEPTION 'column "%" is one of pg_causal''s own columns', conversation USING ERRCODE = '42P16';
  END IF;

  -- pg_causal's columns: add the missing ones, refuse ones of another type.
  FOR col IN SELECT * FROM causal.message_columns() LOOP
    SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
     WHERE a.attrelid = message_table AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', qualified, col.name, col.definition);
    ELSIF column_type <> col.type THEN
      RAISE EXCEPTION 'column "%" of table % has type %, not %', col.name, qualified, column_type, col.type
        USING ERRCODE = '42804';
    END IF;
  END LOOP;

  -- Every region writes rows of its own: a unique key without msg_id (a
  -- local serial, say) would collide when they meet.
  IF EXISTS (SELECT FROM pg_index i
              WHERE i.indrelid = message_table AND i.indisunique
                AND NOT (SELECT a.attnum FROM pg_attribute a
                          WHERE a.attrelid = message_table AND a.attname = 'msg_id') = ANY (i.indkey::int2[])) THEN
    RAISE EXCEPTION 'table % has a unique index without msg_id', qualified USING ERRCODE = '42P16',
      DETAIL = format('Index %s: rows written in different regions would collide on it when they replicate.',
                      (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i
                        WHERE i.indrelid = message_table AND i.indisunique
                          AND NOT (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = message_table
                                      AND a.attname = 'msg_id') = ANY (i.indkey::int2[]))),
      HINT = 'Drop it, or add msg_id to its columns; msg_id identifies a message in every region.';
  END IF;

  -- Rows from before: given an id, stamped now, in this region and epoch.
  SELECT r.epoch INTO current_epoch FROM causal.regions r WHERE r.region = this_region;
  EXECUTE format('UPDATE %s SET msg_id = coalesce(msg_id, causal.new_msg_id()), deps = coalesce(deps, ''{}''),
                         hlc = causal.hlc_now(), crdb_region = $1, epoch = $2
                   WHERE hlc IS NULL OR msg_id IS NULL OR deps IS NULL', qualified)
    USING this_region, coalesce(current_epoch, 0);
  EXECUTE format('ALTER TABLE %s ALTER COLUMN msg_id SET NOT NULL, ALTER COLUMN hlc SET NOT NULL,
                  ALTER COLUMN deps SET NOT NULL, ALTER COLUMN crdb_region SET NOT NULL,
                  ALTER COLUMN epoch SET NOT NULL', qualified);

  -- msg_id identifies a message in every region: the dedupe key and the
  -- replica identity (a local serial key would differ from region to region).
  msg_id_index := causal.index_on(message_table, ARRAY['msg_id']::name[], true);
  IF msg_id_index IS NULL THEN
    EXECUTE format('CREATE UNIQUE INDEX ON %s (msg_id)', qualified);
    msg_id_index := causal.index_on(message_table, ARRAY['msg_id']::name[], true);
  END IF;
  IF causal.index_on(message_table, ARRAY[conversation, 'hlc']::name[], false) IS NULL THEN
    BEGIN
      EXECUTE format('CREATE INDEX ON %s (%I, hlc)', qualified, conversation);
    EXCEPTION WHEN undefined_object THEN
      RAISE EXCEPTION 'conversation column "%" has type %, which a btree cannot index', conversation,
                      (SELECT a.atttypid::regtype FROM pg_attribute a
                        WHERE a.attrelid = message_table AND a.attname = conversation)
        USING ERRCODE = '42804';
    END;
  END IF;
  EXECUTE format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', qualified,
                 (SELECT relname FROM pg_class WHERE oid = msg_id_index));

  EXECUTE format('DROP TRIGGER IF EXISTS causal_message ON %s', qualified);
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message_stored ON %s', qualified);
  EXECUTE format('CREATE TRIGGER causal_message BEFORE INSERT OR UPDATE ON %s FOR EACH ROW
                  EXECUTE FUNCTION causal.message_trigger(%L, %L)', qualified, conversation,
                 CASE WHEN notify THEN 'notify' ELSE 'quiet' END);
  -- Counts and notifies once the row is stored: a retry dropped by ON
  -- CONFLICT, or one that fails on the unique index, never was.
  EXECUTE format('CREATE TRIGGER causal_message_stored AFTER INSERT ON %s FOR EACH ROW
                  EXECUTE FUNCTION causal.message_stored(%L, %L)', qualified, conversation,
                 CASE WHEN notify THEN 'notify' ELSE 'quiet' END);
  -- ALWAYS: the replication apply worker must fire them too
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER causal_message', qualified);
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER causal_message_stored', qualified);

  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'causal_mesh') THEN
    CREATE PUBLICATION causal_mesh FOR TABLE causal.regions, causal.fences, causal.heartbeats;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                  WHERE p.pubname = 'causal_mesh' AND pr.prrelid = message_table) THEN
    EXECUTE format('ALTER PUBLICATION causal_mesh ADD TABLE %s', qualified);
  END IF;
  RETURN message_table;
END $$;
COMMENT ON FUNCTION causal.enable(regclass, name, boolean) IS
    'make a table a causal message table: columns, indexes, the trigger, publication causal_mesh';

-- Undoes enable() without touching the data: the trigger goes and the table
-- leaves the publication; columns, indexes and rows stay.
CREATE FUNCTION causal.disable(message_table regclass) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message ON %s', message_table);
  EXECUTE format('DROP TRIGGER IF EXISTS causal_message_stored ON %s', message_table);
  IF EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
              WHERE p.pubname = 'causal_mesh' AND pr.prrelid = message_table) THEN
    EXECUTE format('ALTER PUBLICATION causal_mesh DROP TABLE %s', message_table);
  END IF;
  RETURN message_table;
END $$;

SELECT pg_catalog.pg_extension_config_dump('causal.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('causal.quarantine_id_seq', '');
