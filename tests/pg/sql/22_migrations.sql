-- Migration history shared with the `dnr migrate` command: dnr.migrations,
-- lock_migrations, migration_history, record_migration and the versioned
-- dnr.migrate_tenants(version, name, ddl), as an owner without GRANTs.
\c - dnr_owner
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'Globex');
\set m1 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)'
\set m2 'ALTER TABLE items ADD COLUMN price numeric'
-- every tenant: applied and recorded with the checksum of the text
SELECT tenant_id, schema_name, status, error FROM dnr.migrate_tenants(1, 'items', :'m1');
SELECT version, name, checksum = encode(sha256(convert_to(:'m1', 'UTF8')), 'hex') AS checksum_ok,
       applied_at <= clock_timestamp() AS applied_at_ok, duration >= '0' AS duration_ok
  FROM dnr.migration_history('tenant_11111111111111111111111111111111');
-- again: nothing applied twice
SELECT tenant_id, status, error FROM dnr.migrate_tenants(1, 'items', :'m1');
-- another text under the same version: drift, refused, nothing run
SELECT tenant_id, status, error FROM dnr.migrate_tenants(1, 'items', :'m1' || ' -- edited');
-- a migration that fails in one tenant only (its column exists already):
-- the other is applied, the failed one records nothing and can be retried
ALTER TABLE tenant_22222222222222222222222222222222.items ADD COLUMN price numeric;
SELECT tenant_id, status, error FROM dnr.migrate_tenants(2, 'price', :'m2');
SELECT s.schema_name, h.version, h.name
  FROM dnr.list_tenants() s, dnr.migration_history(s.schema_name) h ORDER BY 1, 2;
ALTER TABLE tenant_22222222222222222222222222222222.items DROP COLUMN price;
SELECT tenant_id, status, error FROM dnr.migrate_tenants(2, 'price', :'m2');
-- a new tenant catches up, version by version
SELECT dnr.create_tenant('33333333-3333-3333-3333-333333333333', 'Initech');
SELECT tenant_id, status FROM dnr.migrate_tenants(1, 'items', :'m1');
SELECT tenant_id, status FROM dnr.migrate_tenants(2, 'price', :'m2');
-- the history of a row_level store (public, owned by the database owner)
SELECT dnr.lock_migrations('public');
SELECT dnr.record_migration('public', 1, 'init', encode(sha256(convert_to('CREATE TABLE t (id int)', 'UTF8')), 'hex'), '00:00:00.25');
SELECT dnr.record_migration('public', 1, 'init', 'another', '00:00:00.25');
SELECT version, name, checksum, duration FROM dnr.migration_history('public');
-- the lock is per store and transaction-scoped (a row lock in DNR's
-- registry, held by the transaction)
BEGIN;
SELECT dnr.lock_migrations('public');
SELECT count(*) AS transaction_locks FROM pg_locks WHERE locktype = 'transactionid' AND pid = pg_backend_pid();
COMMIT;
SELECT count(*) AS transaction_locks_after FROM pg_locks WHERE locktype = 'transactionid' AND pid = pg_backend_pid();
-- the application role reads and writes no history
\c - app
SELECT * FROM dnr.migration_history('public');
SELECT dnr.record_migration('public', 3, 'x', 'x', '1 second');
SELECT * FROM dnr.migrate_tenants(3, 'x', 'CREATE TABLE x ()');

-- Two runners at once: the second waits on the first's lock of each store,
-- then finds the version recorded and skips it.
\c - postgres
CREATE EXTENSION dblink;
SELECT dblink_connect_u('other', pg_catalog.format('host=%s port=%s dbname=%s user=dnr_owner', :'HOST', :'PORT', :'DBNAME'));
SET ROLE dnr_owner;
BEGIN;
SELECT tenant_id, status FROM dnr.migrate_tenants(3, 'slow', 'CREATE TABLE slow (id int)');
SELECT dblink_send_query('other', $$SELECT tenant_id, status FROM dnr.migrate_tenants(3, 'slow', 'CREATE TABLE slow (id int)')$$);
-- wait (up to 10 s) until the other connection waits for the first's lock
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND locktype = 'transactionid');
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT count(*) AS other_runner_waiting FROM pg_locks WHERE NOT granted AND locktype = 'transactionid';
COMMIT;
SELECT * FROM dblink_get_result('other') AS t(tenant_id uuid, status text);
RESET ROLE;
SELECT store, count(*) AS records_of_version_3 FROM dnr.migrations WHERE version = 3 GROUP BY store ORDER BY 1;
SELECT dblink_disconnect('other');
