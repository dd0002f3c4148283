-- Issue 27, point 6 (migration history): the history belongs to a store's
-- identity (its schema's oid), not its name. dnr.drop_tenant takes it with
-- the tenant; a schema dropped and created again under the same name starts
-- with no history; a history planted under a name before the tenant exists
-- is not the tenant's.
\c - postgres
CREATE ROLE dnr_intruder LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT CREATE ON DATABASE :"DBNAME" TO dnr_intruder;
\c - dnr_owner
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'A');
SELECT tenant_id, status FROM dnr.migrate_tenants(1, 'init', 'CREATE TABLE items (id int)');
SELECT version, name FROM dnr.migration_history('tenant_11111111111111111111111111111111');
SELECT dnr.drop_tenant('11111111-1111-1111-1111-111111111111');
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'A again');
-- a new schema: no history, the migration runs again
SELECT version, name FROM dnr.migration_history('tenant_11111111111111111111111111111111');
SELECT tenant_id, status FROM dnr.migrate_tenants(1, 'init', 'CREATE TABLE items (id int)');
SELECT to_regclass('tenant_11111111111111111111111111111111.items') IS NOT NULL AS items_created;

-- DROP SCHEMA without drop_tenant, then the same name again
CREATE SCHEMA shop;
SELECT dnr.record_migration('shop', 1, 'init', 'abc', '1 second');
SELECT version, name FROM dnr.migration_history('shop');
DROP SCHEMA shop;
CREATE SCHEMA shop;
SELECT version, name FROM dnr.migration_history('shop');
DROP SCHEMA shop;

-- another role plants history under a tenant's future schema name
\c - dnr_intruder
CREATE SCHEMA tenant_33333333333333333333333333333333;
SELECT dnr.record_migration('tenant_33333333333333333333333333333333', 1, 'init', 'planted', '1 second');
DROP SCHEMA tenant_33333333333333333333333333333333;
\c - dnr_owner
SELECT dnr.create_tenant('33333333-3333-3333-3333-333333333333', 'C');
SELECT version, name, checksum FROM dnr.migration_history('tenant_33333333333333333333333333333333');
SELECT tenant_id, status FROM dnr.migrate_tenants(1, 'init', 'CREATE TABLE items (id int)') ORDER BY 1;

\c - postgres
-- only the live schemas' history is left
SELECT m.store, m.version, m.store_oid = n.oid AS same_schema
  FROM dnr.migrations m LEFT JOIN pg_namespace n ON n.nspname = m.store ORDER BY 1, 2;
REVOKE CREATE ON DATABASE :"DBNAME" FROM dnr_intruder;
DROP ROLE dnr_intruder;
