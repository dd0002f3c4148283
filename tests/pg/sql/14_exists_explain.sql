-- An `exists` rule must not cost a sequential scan of the related table:
-- with 20,000 memberships (100 tenants, 20 projects each, 10 members per
-- project, 50 users per tenant) and fresh statistics, listing the projects
-- a member may read probes memberships through the index dnr.apply created
-- on the columns the `exists` matches on. The plans are read from EXPLAIN
-- (FORMAT JSON), node by node; a control shows the same assertion failing
-- when the indexes are gone.
\c - dnr_owner
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity Project:
  table: projects
  id: uuid pk
  name: str(200) required
  archived: bool = false
  access:
    create: role(admin)
    read: role(admin) or exists Membership where project_id = this.id and user_id = current_user
    update: exists Membership where project_id = this.id and user_id = current_user and role = 'editor'

entity Membership:
  table: memberships
  id: uuid pk
  project_id: ref Project required
  user_id: uuid required
  role: enum[viewer,editor] = 'viewer'
  access:
    read: user_id = current_user or role(admin)
    write: role(admin)
    delete: role(admin)
$policy$);
GRANT SELECT, UPDATE ON projects, memberships TO app;

-- Helpers, for the application and the owner.
CREATE SCHEMA plans;
GRANT USAGE ON SCHEMA plans TO app;
-- The nodes of a query's plan (EXPLAIN (FORMAT JSON), every level,
-- subplans included) with the table each reads: a Bitmap Index Scan names
-- only its index, so the index's table is looked up.
CREATE FUNCTION plans.plan_nodes(query text)
RETURNS TABLE (node text, tbl text, index_name text)
LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN QUERY
    WITH RECURSIVE n(p) AS (
        SELECT plan -> 0 -> 'Plan'
        UNION ALL
        SELECT c FROM n, jsonb_array_elements(n.p -> 'Plans') c
    )
    SELECT n.p ->> 'Node Type',
           coalesce(n.p ->> 'Relation Name',
                    (SELECT i.tablename::text FROM pg_indexes i
                      WHERE i.schemaname = 'public' AND i.indexname = n.p ->> 'Index Name')),
           n.p ->> 'Index Name'
      FROM n;
END
$$;
-- How a query reads memberships: whether it does at all, only through
-- indexes, through the index on the columns the `exists` matches on (one
-- DNR created that holds project_id), and whether any node is a sequential
-- scan of it.
CREATE FUNCTION plans.memberships_access(query text)
RETURNS TABLE (reads_memberships boolean, only_through_indexes boolean,
               through_exists_index boolean, seq_scan_on_memberships boolean)
LANGUAGE sql AS $$
    SELECT count(*) > 0,
           coalesce(bool_and(node IN ('Index Scan', 'Index Only Scan', 'Bitmap Index Scan', 'Bitmap Heap Scan')), false),
           coalesce(bool_or(index_name LIKE '%\_dnr\_idx' AND EXISTS (
               SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey::int2[])
                WHERE x.indexrelid = to_regclass('public.' || quote_ident(index_name)) AND a.attname = 'project_id')), false),
           coalesce(bool_or(node = 'Seq Scan'), false)
      FROM plans.plan_nodes(query)
     WHERE tbl = 'memberships'
$$;


\c - postgres
-- project j (1..2000) belongs to tenant j % 100, where it is project
-- number r = j / 100 (0..19); its members are users (7r + 5k) % 50,
-- k = 0..9, of the tenant's 50, the first one an editor
INSERT INTO projects (tenant_id, id, name)
SELECT ('00000000-0000-0000-0000-' || lpad((j % 100)::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0001-' || lpad(j::text, 12, '0'))::uuid,
       'project ' || j
  FROM generate_series(1, 2000) j;
INSERT INTO memberships (tenant_id, id, project_id, user_id, role)
SELECT ('00000000-0000-0000-0000-' || lpad((j % 100)::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0002-' || lpad((j * 10 + k)::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0001-' || lpad(j::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0003-' || lpad(((j % 100) * 1000 + ((j / 100) * 7 + k * 5) % 50)::text, 12, '0'))::uuid,
       CASE WHEN k = 0 THEN 'editor' ELSE 'viewer' END
  FROM generate_series(1, 2000) j, generate_series(0, 9) k;
ANALYZE projects;
ANALYZE memberships;
SELECT count(*) AS memberships, count(DISTINCT tenant_id) AS tenants, count(DISTINCT user_id) AS users,
       count(DISTINCT project_id) AS projects FROM memberships;
-- the member whose projects are listed below: user 7 of tenant 42
SELECT count(*) AS member_of, count(*) FILTER (WHERE role = 'editor') AS editor_of FROM memberships
 WHERE tenant_id = '00000000-0000-0000-0000-000000000042' AND user_id = '00000000-0000-0000-0003-000000042007';

\c - app
BEGIN;
SELECT dnr.set_context('00000000-0000-0000-0000-000000000042', '00000000-0000-0000-0003-000000042007');
SELECT count(*) AS visible FROM projects;
WITH u AS (UPDATE projects SET archived = true RETURNING id) SELECT count(*) AS updated FROM u;
SELECT q AS query, a.*
  FROM unnest(ARRAY['SELECT * FROM projects',
                    'SELECT count(*) FROM projects',
                    'SELECT id, name FROM projects ORDER BY name LIMIT 10',
                    'UPDATE projects SET archived = true']) q,
       LATERAL plans.memberships_access(q) a;
-- the plan itself, for the record
SELECT node, tbl, index_name FROM plans.plan_nodes('SELECT * FROM projects') WHERE tbl IS NOT NULL;
ROLLBACK;

-- Control: the owner (FORCE ROW LEVEL SECURITY applies to it too) without
-- DNR's indexes on memberships gets a sequential scan, and the assertion
-- says so. The primary key, (tenant_id, id), leads with the tenant column
-- too: it goes as well.
\c - dnr_owner
BEGIN;
DROP INDEX memberships_tenant_id_user_id_project_id_dnr_idx, memberships_tenant_id_dnr_idx;
ALTER TABLE memberships DROP CONSTRAINT memberships_pkey;
SELECT dnr.set_context('00000000-0000-0000-0000-000000000042', '00000000-0000-0000-0003-000000042007');
SELECT count(*) AS visible FROM projects;
SELECT * FROM plans.memberships_access('SELECT * FROM projects');
ROLLBACK;
