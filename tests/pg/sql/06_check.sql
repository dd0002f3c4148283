-- dnr.check() is the reference evaluator (dnr-core) under the current
-- context; PostgreSQL's RLS must agree with it, row by row, for every
-- operation. For several contexts and every row, this compares the
-- evaluator's answer with what PostgreSQL lets the application do.
\c - dnr_owner
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str(200) required
  status: enum[todo,doing,done] = 'todo'
  priority: int
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    read: owner_id is null and role(staff)
    update: owner_id = current_user or (role(admin) and status != 'done')
    delete: owner_id = current_user and status != 'done'
    delete: role(admin) and priority < 3
  forbid:
    delete: role(guest)
    update: priority > 8 and not role(admin)
$policy$);
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO app;

\c - postgres
-- every combination of owner, status, priority and tenant
INSERT INTO tasks (id, tenant_id, owner_id, title, status, priority)
SELECT row_number() OVER (), t, o, 'task', s, p
  FROM unnest(ARRAY['aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb']::uuid[]) t,
       unnest(ARRAY['00000000-0000-0000-0000-0000000a11ce', '00000000-0000-0000-0000-000000000b0b', NULL]::uuid[]) o,
       unnest(ARRAY['todo', 'done']) s,
       unnest(ARRAY[1, 5, 9, NULL]) p;
-- a copy without RLS, so the application can list every row it asks about
CREATE TABLE all_tasks AS SELECT * FROM tasks;
GRANT SELECT ON all_tasks TO app;
SELECT count(*) AS rows FROM all_tasks;

\c - app
-- For one operation on one row: does PostgreSQL allow it? Each attempt runs
-- in a subtransaction that is always rolled back.
CREATE FUNCTION pg_temp.pg_allows(op text, r all_tasks) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF op = 'read' THEN
        RETURN EXISTS (SELECT 1 FROM tasks WHERE id = r.id);
    END IF;
    BEGIN
        IF op = 'update' THEN
            UPDATE tasks SET title = title WHERE id = r.id;
        ELSIF op = 'delete' THEN
            DELETE FROM tasks WHERE id = r.id;
        ELSE
            INSERT INTO tasks (id, tenant_id, owner_id, title, status, priority)
            VALUES (r.id + 1000, r.tenant_id, r.owner_id, r.title, r.status, r.priority);
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'roll back', DETAIL = n::text;
    EXCEPTION
        WHEN insufficient_privilege THEN  -- new row violates row-level security policy
            RETURN false;
        WHEN raise_exception THEN
            GET STACKED DIAGNOSTICS n = PG_EXCEPTION_DETAIL;
            RETURN n > 0;
    END;
END
$$;

-- Every row and operation under one context: evaluator vs PostgreSQL.
CREATE FUNCTION pg_temp.compare(label text)
RETURNS TABLE (context text, op text, checked bigint, allowed bigint, mismatches text)
LANGUAGE sql AS $$
    SELECT label, o.op, count(*), count(*) FILTER (WHERE d.evaluator),
           coalesce(string_agg(format('row %s: evaluator %s, postgres %s', d.id, d.evaluator, d.postgres), '; ')
                      FILTER (WHERE d.evaluator IS DISTINCT FROM d.postgres), 'none')
      FROM unnest(ARRAY['create', 'read', 'update', 'delete']) o(op),
           LATERAL (SELECT r.id,
                           dnr.check('Task', o.op, CASE WHEN o.op = 'create'
                                                        THEN to_jsonb(r) || jsonb_build_object('id', r.id + 1000)
                                                        ELSE to_jsonb(r) END) AS evaluator,
                           pg_temp.pg_allows(o.op, r) AS postgres
                      FROM all_tasks r) d
     GROUP BY o.op
     ORDER BY array_position(ARRAY['create', 'read', 'update', 'delete'], o.op)
$$;

BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT * FROM pg_temp.compare('alice in A');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce', '{guest}');
SELECT * FROM pg_temp.compare('alice guest in A');
SELECT dnr.set_context('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '00000000-0000-0000-0000-000000000b0b');
SELECT * FROM pg_temp.compare('bob in B');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000ca401', '{admin}');
SELECT * FROM pg_temp.compare('carol admin in A');
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', NULL, '{staff}');
SELECT * FROM pg_temp.compare('anonymous staff in A');
SELECT dnr.set_context(NULL, '00000000-0000-0000-0000-0000000a11ce', '{admin}');
SELECT * FROM pg_temp.compare('admin without tenant');
COMMIT;

-- A few single answers.
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce');
SELECT dnr.check('Task', 'read', '{"id": 1, "tenant_id": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "owner_id": "00000000-0000-0000-0000-0000000a11ce", "title": "t", "status": "todo"}') AS own_row,
       dnr.check('Task', 'read', '{"id": 1, "tenant_id": "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb", "owner_id": "00000000-0000-0000-0000-0000000a11ce", "title": "t", "status": "todo"}') AS other_tenant,
       dnr.check('Task', 'list', '{"id": 1, "tenant_id": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "owner_id": null, "title": "t", "status": "todo"}') AS null_owner;
COMMIT;

-- check_reason() names the rule, forbid or fence behind the answer (the
-- errors of PostgreSQL's RLS do not).
BEGIN;
SELECT dnr.set_context('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '00000000-0000-0000-0000-0000000a11ce', '{guest}');
SELECT op, dnr.check_reason('Task', op, r) AS reason
  FROM unnest(ARRAY['read', 'update', 'delete']) op,
       (VALUES ('{"id": 1, "tenant_id": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "owner_id": "00000000-0000-0000-0000-0000000a11ce", "title": "t", "status": "todo", "priority": 9}'::jsonb)) v(r);
SELECT dnr.check_reason('Task', 'read', '{"id": 1, "tenant_id": "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb", "owner_id": "00000000-0000-0000-0000-0000000a11ce", "title": "t", "status": "todo"}') AS other_tenant,
       dnr.check_reason('Task', 'create', '{"id": 1, "owner_id": "00000000-0000-0000-0000-000000000b0b", "title": "t", "status": "todo"}') AS for_bob;
COMMIT;
