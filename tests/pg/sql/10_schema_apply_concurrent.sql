-- apply of a mode-schema file and create_tenant at the same time: the new
-- tenant waits for the apply's transaction and then gets its policy. A
-- second connection (dblink, opened by the superuser) runs create_tenant
-- while this one holds the apply's transaction open.
CREATE EXTENSION dblink;
SELECT dblink_connect_u('other', pg_catalog.format('host=%s port=%s dbname=%s user=dnr_owner', :'HOST', :'PORT', :'DBNAME'));
SET ROLE dnr_owner;
SELECT dnr.create_tenant('11111111-1111-1111-1111-111111111111', 'Acme');
BEGIN;
SELECT dnr.apply($policy$
tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  access:
    read: true
$policy$);
SELECT dblink_send_query('other', $$SELECT dnr.create_tenant('22222222-2222-2222-2222-222222222222', 'Globex')$$);
-- wait (up to 10 s) until the other connection waits for dnr.tenants
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'dnr.tenants'::regclass);
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT count(*) AS create_tenant_waiting FROM pg_locks WHERE NOT granted AND relation = 'dnr.tenants'::regclass;
COMMIT;
SELECT * FROM dblink_get_result('other') AS t(schema_name name);
SELECT schema_name, table_name, policy_name FROM dnr.policies ORDER BY 1, 2, 3;
RESET ROLE;
SELECT dblink_disconnect('other');
