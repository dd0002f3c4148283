-- Schema per tenant: registry, search_path switching, migrations with
-- per-tenant subtransactions, dropping a tenant.
\c - dnr_owner
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'Globex');
SELECT dnr.create_tenant('33333333-3333-3333-3333-333333333333', 'Initech');
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme again');
-- the owner lists its tenants without any privilege on DNR's registry
SELECT id, name, schema_name FROM dnr.list_tenants();
SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%' ORDER BY 1;

-- Every tenant gets the same table.
SELECT * FROM dnr.migrate_tenants('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)');
SELECT to_regclass('tenant_11111111111111111111111111111111.items') IS NOT NULL AS acme,
       to_regclass('tenant_22222222222222222222222222222222.items') IS NOT NULL AS globex,
       to_regclass('tenant_33333333333333333333333333333333.items') IS NOT NULL AS initech;
-- migrate_tenants restores the caller's search_path
SHOW search_path;

-- One tenant's schema already has a conflicting table: its migration fails
-- and is reported; the others succeed and stay applied.
CREATE TABLE tenant_22222222222222222222222222222222.tags (id int);
SELECT * FROM dnr.migrate_tenants('CREATE TABLE tags (id int PRIMARY KEY, label text NOT NULL)');
SELECT n.nspname, c.relname, (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) AS columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = 'tags' ORDER BY 1;
-- A failing statement inside a multi-statement migration undoes that
-- tenant's whole migration.
SELECT * FROM dnr.migrate_tenants('ALTER TABLE items ADD COLUMN price int; ALTER TABLE tags ADD COLUMN label text');
SELECT n.nspname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = 'items' AND a.attname = 'price' ORDER BY 1;

-- use_tenant: unqualified names resolve in the tenant's schema for the
-- transaction; the tenant becomes the context's tenant too.
GRANT USAGE ON SCHEMA tenant_11111111111111111111111111111111, tenant_22222222222222222222222222222222 TO app;
GRANT SELECT, INSERT ON tenant_11111111111111111111111111111111.items, tenant_22222222222222222222222222222222.items TO app;
\c - app
BEGIN;
SELECT dnr.use_tenant('11111111-1111-1111-1111-111111111111');
SHOW search_path;
SELECT dnr.current_tenant();
INSERT INTO items VALUES (1, 'acme item');
COMMIT;
BEGIN;
SELECT dnr.use_tenant('22222222-2222-2222-2222-222222222222');
INSERT INTO items VALUES (1, 'globex item');
SELECT * FROM items;
COMMIT;
-- after the transaction: back to the default search_path and no tenant
SHOW search_path;
SELECT dnr.current_tenant();
SELECT * FROM tenant_11111111111111111111111111111111.items;
SELECT dnr.use_tenant('99999999-9999-9999-9999-999999999999');
-- the registry is neither readable nor writable by the application
SELECT count(*) AS tenants_visible_to_app FROM dnr.tenants;
SELECT count(*) AS tenants_listed_to_app FROM dnr.list_tenants();
INSERT INTO dnr.tenants VALUES ('44444444-4444-4444-4444-444444444444', 'sneaky', 'public');
SELECT dnr.drop_tenant('11111111-1111-1111-1111-111111111111');

-- Dropping a tenant drops its schema and its registry entry.
\c - dnr_owner
SELECT dnr.drop_tenant('33333333-3333-3333-3333-333333333333');
SELECT dnr.drop_tenant('33333333-3333-3333-3333-333333333333');
SELECT id, name FROM dnr.list_tenants();
SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%' ORDER BY 1;
