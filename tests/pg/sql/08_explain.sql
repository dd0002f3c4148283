-- Policies must not cost a sequential scan: on 100,000 rows over 100
-- tenants, a tenant's query uses the index on the tenant column. The DO
-- blocks fail loudly if any plan contains a Seq Scan.
\c - dnr_owner
SELECT dnr.apply($policy$
entity Event:
  table: events
  id: int pk
  actor_id: uuid
  kind: str(20) required
  access:
    read: true
    read: actor_id = current_user
    create: authenticated
$policy$);
GRANT SELECT ON events TO app;
-- the same data under the fence alone
CREATE TABLE fenced_events (id int PRIMARY KEY, tenant_id uuid NOT NULL, kind text NOT NULL);
SELECT dnr.enable_tenant_isolation('fenced_events');
GRANT SELECT ON fenced_events TO app;

\c - postgres
INSERT INTO events (id, tenant_id, actor_id, kind)
SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 100)::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0001-' || lpad((i % 1000)::text, 12, '0'))::uuid,
       (ARRAY['click', 'view', 'buy'])[i % 3 + 1]
  FROM generate_series(1, 100000) i;
INSERT INTO fenced_events SELECT id, tenant_id, kind FROM events;
ANALYZE events;
ANALYZE fenced_events;
SELECT count(*) AS rows, count(DISTINCT tenant_id) AS tenants FROM events;

\c - app
CREATE FUNCTION pg_temp.plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;
CREATE FUNCTION pg_temp.assert_no_seq_scan(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    plan text;
BEGIN
    SELECT string_agg(p, E'\n') INTO plan FROM pg_temp.plan(query) p;
    IF plan LIKE '%Seq Scan%' THEN
        RAISE EXCEPTION 'sequential scan for: %', query USING DETAIL = plan;
    END IF;
    IF plan NOT LIKE '%Index%' THEN
        RAISE EXCEPTION 'no index used for: %', query USING DETAIL = plan;
    END IF;
    RETURN 'index used: ' || query;
END
$$;

BEGIN;
SELECT dnr.set_context('00000000-0000-0000-0000-000000000042', '00000000-0000-0000-0001-000000000042');
SELECT count(*) AS visible FROM events;
SELECT * FROM pg_temp.plan('SELECT count(*) FROM events');
SELECT pg_temp.assert_no_seq_scan('SELECT count(*) FROM events');
SELECT pg_temp.assert_no_seq_scan('SELECT * FROM events WHERE kind = ''buy''');
SELECT pg_temp.assert_no_seq_scan('SELECT * FROM events ORDER BY id DESC LIMIT 10');
SELECT pg_temp.assert_no_seq_scan('SELECT * FROM events WHERE id = 4242');
SELECT count(*) AS visible FROM fenced_events;
SELECT * FROM pg_temp.plan('SELECT count(*) FROM fenced_events');
SELECT pg_temp.assert_no_seq_scan('SELECT count(*) FROM fenced_events');
SELECT pg_temp.assert_no_seq_scan('SELECT * FROM fenced_events WHERE kind = ''view''');
COMMIT;

-- Control: the assertion does fail on a sequential scan.
CREATE TEMP TABLE unindexed AS SELECT i FROM generate_series(1, 10000) i;
ANALYZE unindexed;
SELECT pg_temp.assert_no_seq_scan('SELECT * FROM unindexed WHERE i = 5');

-- The same check written as a DO block, as a user would paste it.
BEGIN;
SELECT dnr.set_tenant('00000000-0000-0000-0000-000000000007');
DO $$
DECLARE
    line text;
BEGIN
    FOR line IN EXPLAIN (COSTS OFF) SELECT count(*) FROM events LOOP
        IF line LIKE '%Seq Scan%' THEN
            RAISE EXCEPTION 'policy-filtered query uses a sequential scan: %', line;
        END IF;
    END LOOP;
END
$$;
COMMIT;
