-- Owners without GRANTs: dnr_owner (owns the database's tables) and
-- dnr_rival (another owner, its own schema) apply policies, isolate tables
-- and manage tenants holding no privilege on DNR's registries. Neither can
-- change the other's policies or records through DNR's functions, nor
-- record a table or schema it does not own, also not by calling the
-- registry directly, with a hijacked search_path or with quotes in names.
CREATE ROLE dnr_rival LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT CREATE ON DATABASE :"DBNAME" TO dnr_rival;
CREATE SCHEMA rival AUTHORIZATION dnr_rival;
SELECT has_table_privilege('dnr_owner', 'dnr.applied', 'SELECT') AS owner_reads_applied,
       has_table_privilege('dnr_owner', 'dnr.managed_tables', 'INSERT') AS owner_writes_managed,
       has_table_privilege('dnr_owner', 'dnr.tenants', 'INSERT') AS owner_writes_tenants,
       has_table_privilege('dnr_owner', 'dnr.migrations', 'INSERT') AS owner_writes_migrations;

\c - dnr_owner
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  access:
    read: owner_id = current_user
    write: owner_id = current_user
$policy$);
CREATE TABLE docs (id int PRIMARY KEY, tenant_id uuid);
SELECT dnr.enable_tenant_isolation('docs');
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', $$O'Brien"); DROP TABLE tasks; --$$);
SELECT id, name, schema_name FROM dnr.list_tenants();
SELECT table_name, policy_name FROM dnr.policies ORDER BY 1, 2;
-- applying again replaces its own policies
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  access:
    read: true
$policy$);
SELECT table_name, policy_name FROM dnr.policies ORDER BY 1, 2;

\c - dnr_rival
SET search_path = rival;
-- its own table: fine, and the first owner's policies stay
SELECT dnr.apply($policy$
entity Item:
  table: items
  id: int pk
  access:
    read: true
$policy$);
SELECT schema_name, table_name, policy_name FROM dnr.policies ORDER BY 1, 2, 3;
SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2;
-- the first owner's tables: refused by PostgreSQL (the DDL runs as the caller)
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  access:
    read: true
$policy$);
SET search_path = public, rival;
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  access:
    read: true
$policy$);
SET search_path = rival;
SELECT dnr.enable_tenant_isolation('public.docs');
-- nor through the registry itself: a table or schema it does not own
SELECT dnr._registry('record_isolation', jsonb_build_object('tbl', 'public.docs'::regclass::oid, 'tenant_column', 'id'));
SELECT dnr._registry('record_apply', jsonb_build_object('source', 'x', 'mode', 'row_level', 'ddl', '',
       'tables', '[]'::jsonb, 'rels', jsonb_build_array('public.tasks'::regclass::oid)));
SELECT dnr._registry('add_applied_tables', jsonb_build_object('rels', jsonb_build_array('public.docs'::regclass::oid)));
SELECT dnr._registry('unregister_tenant', '{"id": "11111111-1111-1111-1111-111111111111"}');
SELECT dnr._registry('register_tenant', '{"id": "33333333-3333-3333-3333-333333333333"}');
SELECT dnr._registry('no_such_operation', '{}');
SELECT dnr._registry_run('record_isolation', jsonb_build_object('tbl', 'public.docs'::regclass::oid, 'tenant_column', 'id'));
-- a hijacked search_path (its own pg_has_role and has_schema_privilege
-- first) changes nothing: every DNR function pins its own
CREATE FUNCTION rival.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION rival.has_schema_privilege(oid, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SET search_path = rival, pg_catalog;
SELECT dnr._registry('record_isolation', jsonb_build_object('tbl', 'public.docs'::regclass::oid, 'tenant_column', 'id'));
SELECT dnr.record_migration('public', 1, 'sneaky', 'x', '1 second');
SELECT dnr.drop_tenant('11111111-1111-1111-1111-111111111111');
SET search_path = rival;
-- the first owner's tenants: not listed, not dropped, not re-created
SELECT * FROM dnr.list_tenants();
SELECT dnr.drop_tenant('11111111-1111-1111-1111-111111111111');
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT * FROM dnr.migrate_tenants('CREATE TABLE stolen (id int)');
-- its own tenant
SELECT dnr.create_tenant('44444444-4444-4444-4444-444444444444', 'Rival Inc');
SELECT id, name FROM dnr.list_tenants();
-- a schema named like a tenant's, made beforehand, is not a way in
CREATE SCHEMA tenant_55555555555555555555555555555555;
SELECT dnr.create_tenant('55555555-5555-5555-5555-555555555555', 'Squatter');
-- migration history: its own schemas only
SELECT dnr.record_migration('rival', 1, 'init', encode(sha256(convert_to('CREATE TABLE t ()', 'UTF8')), 'hex'), '1 second');
SELECT version, name, duration FROM dnr.migration_history('rival');
SELECT * FROM dnr.migration_history('public');
SELECT * FROM dnr.migration_history('tenant_11111111111111111111111111111111');
SELECT * FROM dnr.migration_history('no_such_schema');
SELECT dnr.record_migration('public', 1, 'sneaky', 'x', '1 second');

-- What the first owner's records look like now (as the superuser).
\c - postgres
SELECT tbl, tenant_column, managed_by FROM dnr.managed_tables ORDER BY tbl::text;
SELECT applied_by, tables FROM dnr.applied ORDER BY id;
SELECT name, schema_name FROM dnr.tenants ORDER BY created_at;
SELECT store, version, name FROM dnr.migrations ORDER BY 1, 2;
SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2;
-- the superuser lists every tenant
SELECT name FROM dnr.list_tenants();

\c - dnr_owner
-- the first owner's own records: it drops its tenant, re-applies; the
-- rival's table keeps its policy and record
SELECT dnr.drop_tenant('22222222-2222-2222-2222-222222222222');
SELECT id, name FROM dnr.list_tenants();
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  access:
    read: true
$policy$);
\c - postgres
SELECT tbl, managed_by FROM dnr.managed_tables ORDER BY tbl::text;
SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'rival' ORDER BY 1, 2;

-- The newest applied source is what dnr.check evaluates: an application
-- role (no table, no CREATE on the database) cannot make its own the
-- newest, neither with a policy that applies to no table nor with a
-- temporary table; nor can it keep a history for its temporary schema.
\c - app
SELECT dnr.apply($policy$
tenancy:
  mode: schema
entity Thing:
  table: things
  access:
    read: true
$policy$);
SELECT dnr.apply('');
SET search_path = pg_temp;
SELECT dnr.apply($policy$
entity Thing:
  table: things
  id: int pk
  access:
    read: true
$policy$);
CREATE TEMP TABLE scratch (id int);
DO $$
BEGIN
    PERFORM dnr.record_migration(pg_catalog.pg_my_temp_schema()::regnamespace::name, 1, 'x', 'x', '1 second');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused: %', SQLSTATE;
END
$$;
RESET search_path;
\c - postgres
SELECT applied_by, tables FROM dnr.applied ORDER BY id DESC LIMIT 1;
SELECT count(*) AS temp_histories FROM dnr.migrations WHERE store LIKE 'pg\_temp\_%';

DROP SCHEMA tenant_44444444444444444444444444444444, tenant_55555555555555555555555555555555, rival CASCADE;
REVOKE CREATE ON DATABASE :"DBNAME" FROM dnr_rival;
DROP ROLE dnr_rival;
