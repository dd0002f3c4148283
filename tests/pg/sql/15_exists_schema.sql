-- `exists` with tenancy mode schema: dnr.apply runs the compiled SQL, DO
-- blocks for the indexes included, in every tenant's schema (and
-- dnr.create_tenant in a new one); each schema's policies name that
-- schema's related table; dnr.check reads the current tenant's tables.
-- Users: alice (…a11ce), bob (…0b0b). Acme and Globex both have a project
-- with the same id; alice is its member in Acme, bob in Globex.
\c - dnr_owner
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'Globex');
-- Acme's schema already has the memberships table, with an index that
-- leads with the matched columns: apply creates none there.
CREATE TABLE tenant_11111111111111111111111111111111.memberships (
  id uuid PRIMARY KEY,
  project_id uuid NOT NULL,
  user_id uuid NOT NULL,
  role text DEFAULT 'viewer'
);
CREATE INDEX acme_members ON tenant_11111111111111111111111111111111.memberships (project_id, user_id, role);
SET search_path = public;
SELECT dnr.apply($policy$
tenancy:
  mode: schema

entity Project:
  table: projects
  id: uuid pk
  name: str(200) required
  access:
    read: exists Membership where project_id = this.id and user_id = current_user
    update: exists Membership where project_id = this.id and user_id = current_user and role = 'editor'

entity Membership:
  table: memberships
  id: uuid pk
  project_id: ref Project required
  user_id: uuid required
  role: enum[viewer,editor] = 'viewer'
  access:
    read: user_id = current_user
$policy$);
SELECT schemaname, tablename, indexname FROM pg_indexes
 WHERE schemaname LIKE 'tenant\_%' AND tablename = 'memberships' ORDER BY 1, 3;
-- each schema's read policy names its own schema's memberships
SELECT schema_name, policy_name,
       (regexp_match(using_expr, 'FROM (\S+) dnr_e1'))[1] AS related_table
  FROM dnr.policies WHERE table_name = 'projects' AND policy_name = 'dnr_read' ORDER BY 1;
SHOW search_path;
SELECT to_regclass('public.memberships') AS public_memberships;

SELECT tenant_id, ok, error FROM dnr.migrate_tenants($ddl$
  DO $do$ BEGIN EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO app', pg_catalog.current_schema()); END $do$;
  GRANT SELECT, UPDATE ON projects, memberships TO app
$ddl$);

\c - postgres
INSERT INTO tenant_11111111111111111111111111111111.projects VALUES ('00000000-0000-0000-0000-0000000000a1', 'Acme rocket');
INSERT INTO tenant_11111111111111111111111111111111.memberships (id, project_id, user_id, role)
VALUES ('00000000-0000-0000-0000-000000000101', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000a11ce', 'editor');
INSERT INTO tenant_22222222222222222222222222222222.projects VALUES ('00000000-0000-0000-0000-0000000000a1', 'Globex rocket');
INSERT INTO tenant_22222222222222222222222222222222.memberships (id, project_id, user_id, role)
VALUES ('00000000-0000-0000-0000-000000000201', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000b0b', 'viewer');

\c - app
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111') AS schema, dnr.set_user('00000000-0000-0000-0000-0000000a11ce') AS alice;
SELECT name FROM projects;
SELECT dnr.check('Project', 'read', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}') AS read,
       dnr.check('Project', 'update', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}') AS "update";
SELECT dnr.set_user('00000000-0000-0000-0000-000000000b0b') AS bob;
SELECT name FROM projects;
SELECT dnr.check_reason('Project', 'read', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}') AS reason;
COMMIT;
BEGIN;
SELECT dnr.use_tenant('22222222-2222-2222-2222-222222222222') AS schema, dnr.set_user('00000000-0000-0000-0000-000000000b0b') AS bob;
SELECT name FROM projects;
SELECT dnr.check('Project', 'read', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}') AS read,
       dnr.check('Project', 'update', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}') AS "update";
WITH u AS (UPDATE projects SET name = 'by bob' RETURNING id) SELECT count(*) AS bob_updated FROM u;
SELECT dnr.set_user('00000000-0000-0000-0000-0000000a11ce') AS alice;
SELECT name FROM projects;
SELECT dnr.check('Project', 'read', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}') AS read;
COMMIT;
-- Without a tenant the tables to read are unknown: a clean error. A rule
-- without `exists` needs no table.
BEGIN;
SELECT dnr.set_context(NULL, '00000000-0000-0000-0000-0000000a11ce');
SELECT dnr.check('Project', 'read', '{"id": "00000000-0000-0000-0000-0000000000a1", "name": "x"}');
ROLLBACK;
BEGIN;
SELECT dnr.set_context(NULL, '00000000-0000-0000-0000-0000000a11ce');
SELECT dnr.check('Membership', 'read', '{"user_id": "00000000-0000-0000-0000-0000000a11ce"}') AS own_membership;
ROLLBACK;

-- A tenant created later gets the tables, the policies and the index.
\c - dnr_owner
SELECT dnr.create_tenant('33333333-3333-3333-3333-333333333333', 'Initech');
SELECT schemaname, tablename, indexname FROM pg_indexes
 WHERE schemaname = 'tenant_33333333333333333333333333333333' AND tablename = 'memberships' ORDER BY 3;
SELECT schema_name, (regexp_match(using_expr, 'FROM (\S+) dnr_e1'))[1] AS related_table
  FROM dnr.policies WHERE table_name = 'projects' AND policy_name = 'dnr_read'
   AND schema_name = 'tenant_33333333333333333333333333333333';
