-- Comparison operators and the opclasses behind ORDER BY, indexes, hashing.
SET search_path = public, causal;

CREATE TABLE ops (h hlc);
INSERT INTO ops VALUES
  ('2.00000@1'), ('1.00001@1'), ('1.00000@2'), ('1.00000@1'), ('3.00000@0'), ('1.00001@0'), (NULL);

-- total order: physical, then logical, then node
SELECT h FROM ops ORDER BY h;
SELECT h FROM ops ORDER BY h DESC NULLS LAST;

-- the six operators against one value, from both sides
SELECT h, h < '1.00001@1' AS lt, h <= '1.00001@1' AS le, h = '1.00001@1' AS eq,
       h <> '1.00001@1' AS ne, h >= '1.00001@1' AS ge, h > '1.00001@1' AS gt,
       hlc_cmp(h, '1.00001@1') AS cmp
  FROM ops WHERE h IS NOT NULL ORDER BY h;

-- commutators and negators are declared
SELECT o.oprname, c.oprname AS commutator, n.oprname AS negator, o.oprrest, o.oprjoin,
       o.oprcanhash, o.oprcanmerge
  FROM pg_operator o
  LEFT JOIN pg_operator c ON c.oid = o.oprcom
  LEFT JOIN pg_operator n ON n.oid = o.oprnegate
 WHERE o.oprleft = 'causal.hlc'::regtype AND o.oprright = 'causal.hlc'::regtype
 ORDER BY o.oprname;

-- default opclasses for btree, hash and brin
SELECT am.amname, opc.opcname, opc.opcdefault
  FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
 WHERE opc.opcintype = 'causal.hlc'::regtype ORDER BY am.amname;
SELECT amprocnum, amproc::regproc
  FROM pg_amproc p JOIN pg_opfamily f ON f.oid = p.amprocfamily
  JOIN pg_am am ON am.oid = f.opfmethod
 WHERE am.amname = 'btree' AND p.amproclefttype = 'causal.hlc'::regtype ORDER BY amprocnum;

-- min / max
SELECT min(h), max(h) FROM ops;
SELECT min(h) IS NULL AS empty_min FROM ops WHERE false;

-- DISTINCT, GROUP BY and UNION use the hash or sort opclass
SELECT count(DISTINCT h) FROM ops;
SELECT h, count(*) FROM (SELECT h FROM ops UNION ALL SELECT h FROM ops) s GROUP BY h ORDER BY h;

-- hashing agrees with equality; the extended hash depends on the seed
SELECT hlc_hash('1.00001@1') = hlc_hash(hlc_from_parts(1, 1, 1)) AS same_hash,
       hlc_hash('1.00001@1') <> hlc_hash('1.00001@2') AS node_hashed,
       hlc_hash_extended('1.00001@1', 0) <> hlc_hash_extended('1.00001@1', 1) AS seeded,
       -- PostgreSQL's contract: seed 0 gives the standard hash in the low 32 bits
       (hlc_hash_extended('1.00001@1', 0) & 4294967295) = (hlc_hash('1.00001@1') & 4294967295)
           AS seed0_matches;

-- hash values are stored by hash indexes and route rows to hash partitions:
-- they are the same on every platform and must never change
SELECT hlc_hash('1732590000123.00042@7'), hlc_hash_extended('1732590000123.00042@7', 42);

-- indexes of each kind build; btree deduplication is allowed
CREATE INDEX ops_btree ON ops (h);
CREATE INDEX ops_hash ON ops USING hash (h);
CREATE INDEX ops_brin ON ops USING brin (h);
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid = 'ops'::regclass ORDER BY 1;
SELECT opcname, amvalidate(oid) FROM pg_opclass
 WHERE opcintype = 'causal.hlc'::regtype ORDER BY opcname;

DROP TABLE ops;
