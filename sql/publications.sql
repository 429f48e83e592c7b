-- What the mesh publishes: pg_causal's own tables (sql/regions.sql,
-- sql/failover.sql) and the message tables (sql/messages.sql).

-- A publication's column list for a message table while peers of 0.2.0 may
-- subscribe (mesh_publication): every column PostgreSQL replicates but
-- written_by; '' (every column) otherwise.
CREATE FUNCTION causal.columns_but_written_by(message_table regclass, needed boolean) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN needed THEN ' (' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) || ')' ELSE '' END
    FROM pg_attribute a
   WHERE a.attrelid = message_table AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     AND a.attname <> 'written_by'
$$;
REVOKE ALL ON FUNCTION causal.columns_but_written_by(regclass, boolean) FROM PUBLIC;

-- The mesh's publications, made or mended, the one place that knows them:
--  * causal_mesh: pg_causal's own tables, INSERT and UPDATE. Regions,
--    fences and removals go everywhere by every path; heartbeats only this
--    region's own (a heartbeat relayed by another region would move this
--    region's peers' stable point past messages that did not come with it).
--  * causal_messages: every message table, INSERT only, the rows this
--    region's own writes made (coalesce(written_by, crdb_region): a local
--    insert, or a tombstone of its DELETE): each message is decoded and sent
--    once per peer. A region that cannot hear a writer directly pulls its rows
--    from a peer that can (relay.cpp). Updates need not travel: a local one
--    changes nothing, and the apply path's (another copy joining a row) are
--    what each region does itself when that copy reaches it.
--  * causal_copy: the message tables again, publishing nothing: it is there
--    for a subscription's first copy, which then takes every row the peer
--    holds, whoever wrote it (a joining region copies what regions that are
--    gone wrote too).
-- Refuses one that a role other than a superuser owns, or that publishes
-- all tables: that owner decides what the mesh replicates, and DELETE or
-- TRUNCATE would wipe every region. A deletion travels as its tombstone,
-- an INSERT.
--
-- messages_in_mesh: whether causal_mesh carries the message tables too,
-- every row, as it did before 0.3.0. While a region's peers still subscribe
-- to causal_mesh alone (a mesh being updated), taking the tables out of it
-- would make them skip this region's messages for good; so the update
-- script puts them in (true), NULL keeps what is there, and `causalctl init`
-- takes them out (false) once every link subscribes to all three.
CREATE FUNCTION causal.mesh_publication(messages_in_mesh boolean DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
  spec record;
  pub pg_publication;
  this_region text := coalesce(current_setting('causal.region', true), '');
  tables text;
  member record;
  in_mesh boolean := coalesce(messages_in_mesh,
                              EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                                       WHERE p.pubname = 'causal_mesh'
                                         AND pr.prrelid IN (SELECT m.relid FROM causal.message_tables() m)));
BEGIN
  FOR spec IN VALUES ('causal_mesh', 'insert, update', true, true),
                     ('causal_messages', 'insert', true, false),
                     ('causal_copy', '', false, false) LOOP
    SELECT * INTO pub FROM pg_publication p WHERE p.pubname = spec.column1;
    IF NOT FOUND THEN
      EXECUTE format('CREATE PUBLICATION %I WITH (publish = %L)', spec.column1, spec.column2);
    ELSIF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = pub.pubowner) OR pub.puballtables THEN
      RAISE EXCEPTION 'publication "%" already exists and is not pg_causal''s', spec.column1 USING ERRCODE = '42710',
        DETAIL = format('It belongs to %s%s. Whoever owns it decides what the mesh replicates.',
                        pub.pubowner::regrole, CASE WHEN pub.puballtables THEN ' and publishes all tables' ELSE '' END),
        HINT = format('Drop it, or have a superuser own it (ALTER PUBLICATION %I OWNER TO ...).', spec.column1);
    ELSIF pub.pubdelete OR pub.pubtruncate OR pub.pubinsert <> spec.column3 OR pub.pubupdate <> spec.column4 THEN
      EXECUTE format('ALTER PUBLICATION %I SET (publish = %L)', spec.column1, spec.column2);
    END IF;
  END LOOP;
  -- While the message tables are in causal_mesh, peers may still run 0.2.0,
  -- whose tables have no written_by, and PostgreSQL's apply worker stops on
  -- a column it receives and its table lacks. So every publication then
  -- sends each table's columns but written_by (PostgreSQL 15 wants the same
  -- column list in every publication of a subscription). A column added
  -- meanwhile is sent once this runs again (enable(), or causalctl init).
  EXECUTE format('ALTER PUBLICATION causal_mesh SET TABLE causal.regions, causal.fences, causal.removed_regions,
                  causal.heartbeats WHERE (region = %L)', this_region)
          || CASE WHEN in_mesh THEN (SELECT coalesce(string_agg(format(', ONLY %s', m.relid) || causal.columns_but_written_by(m.relid, in_mesh), ''), '')
                                       FROM causal.message_tables() m)
                  ELSE '' END;
  -- A table enabled before written_by existed publishes every row it holds,
  -- as every table did then, until enable() runs on it again.
  SELECT string_agg(format('ONLY %s', m.relid) || causal.columns_but_written_by(m.relid, in_mesh)
                    || CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = m.relid
                                            AND a.attname = 'written_by' AND NOT a.attisdropped)
                            THEN format(' WHERE (coalesce(written_by, crdb_region) = %L)', this_region) ELSE '' END,
                    ', ' ORDER BY m.relid::text)
    INTO tables FROM causal.message_tables() m;
  IF tables IS NOT NULL THEN
    EXECUTE 'ALTER PUBLICATION causal_messages SET TABLE ' || tables;
    EXECUTE 'ALTER PUBLICATION causal_copy SET TABLE '
            || (SELECT string_agg(format('ONLY %s', m.relid) || causal.columns_but_written_by(m.relid, in_mesh), ', ')
                  FROM causal.message_tables() m);
  ELSE
    FOR member IN SELECT p.pubname, pr.prrelid::regclass AS relid
                    FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                   WHERE p.pubname IN ('causal_messages', 'causal_copy') LOOP
      EXECUTE format('ALTER PUBLICATION %I DROP TABLE %s', member.pubname, member.relid);
    END LOOP;
  END IF;
END $$;
REVOKE ALL ON FUNCTION causal.mesh_publication(boolean) FROM PUBLIC;
