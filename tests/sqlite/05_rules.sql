-- Owner rules, roles, forbid, NULLs (three-valued logic), shared data, and
-- dnr_check agreeing with the enforcement.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'alice todo');
INSERT INTO tasks (id, owner_id, title, status) VALUES (2, '00000000-0000-0000-0000-00000000a11c', 'alice done', 'done');
INSERT INTO tasks (id, owner_id, title) VALUES (3, NULL, 'nobody owns this');
.print '# owner rule: carol (no role) reads only the unowned row'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c0', NULL, 0);
SELECT id, title FROM tasks ORDER BY id;
.print '# carol cannot update or delete rows of alice (silently skipped, as in RLS)'
UPDATE tasks SET title = 'carol was here';
DELETE FROM tasks;
.print '# a NULL owner: update (owner = me) is NULL, so denied: skipped'
SELECT id, title FROM tasks ORDER BY id;
.print '# carol cannot write a row she could not read afterwards'
INSERT INTO tasks (id, owner_id, title) VALUES (4, '00000000-0000-0000-0000-00000000a11c', 'planted for alice');
.print '# admin role: carol as admin sees and updates everything in the tenant'
SELECT dnr_set_roles('admin', 0);
SELECT id, title FROM tasks ORDER BY id;
UPDATE tasks SET title = title || ' (reviewed)' WHERE id IN (1, 3);
.print '# but delete needs ownership: nothing is deleted'
DELETE FROM tasks WHERE id = 1;
SELECT id, title FROM tasks ORDER BY id;
.print '# alice: delete rule owner_id = current_user and status != done'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
DELETE FROM tasks WHERE id = 2;
SELECT id FROM tasks ORDER BY id;
.print '# forbid delete role(guest) wins over the permit'
SELECT dnr_set_roles('guest', 0);
DELETE FROM tasks WHERE id = 1;
SELECT id FROM tasks ORDER BY id;
SELECT dnr_set_roles(NULL, 0);
.print '# a NULL status: status != done is NULL, so delete is denied'
UPDATE tasks SET status = NULL WHERE id = 1;
DELETE FROM tasks WHERE id = 1;
SELECT id, status FROM tasks ORDER BY id;
UPDATE tasks SET status = 'todo' WHERE id = 1;
DELETE FROM tasks WHERE id = 1;
SELECT id FROM tasks ORDER BY id;
.print '# enum check still holds in storage'
UPDATE tasks SET status = 'bogus' WHERE id = 2;
.print '# an update that makes the row unreadable to its writer is refused'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'admin', 0);
INSERT INTO tasks (id, owner_id, title) VALUES (5, '00000000-0000-0000-0000-00000000a11c', 'five');
SELECT dnr_set_roles(NULL, 0);
UPDATE tasks SET owner_id = '00000000-0000-0000-0000-000000000b0b' WHERE id = 5;
SELECT id, owner_id FROM tasks WHERE id = 5;
.print '# projects: write needs role(admin)'
INSERT INTO projects (id, name) VALUES (1, 'no role');
SELECT dnr_set_roles('admin', 0);
INSERT INTO projects (id, name) VALUES (1, 'admin');
SELECT dnr_set_roles(NULL, 0);
UPDATE projects SET name = 'renamed';
DELETE FROM projects;
SELECT id, name FROM projects;
.print '# plans are shared (tenant: none): readable without a tenant; writes need superadmin'
SELECT dnr_clear_context();
INSERT INTO plans (id, name) VALUES (1, 'free');
SELECT dnr_set_roles('superadmin', 0);
INSERT INTO plans (id, name) VALUES (1, 'free');
SELECT dnr_clear_context();
SELECT * FROM plans;
SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002', 0);
SELECT * FROM plans;
.print '# dnr_check gives the answer of the evaluator under the current context'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT dnr_check('Task', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","owner_id":"00000000-0000-0000-0000-00000000A11C"}');
SELECT dnr_check('Task', 'read', '{"tenant_id":"bbbbbbbb-0000-0000-0000-000000000002","owner_id":"00000000-0000-0000-0000-00000000a11c"}');
SELECT dnr_check('tasks', 'list', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","owner_id":null}');
SELECT dnr_check('Task', 'delete', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","owner_id":"00000000-0000-0000-0000-00000000a11c","status":"done"}');
SELECT dnr_check('Task', 'create', '{"owner_id":"00000000-0000-0000-0000-00000000a11c","title":"x"}');
SELECT dnr_check('Plan', 'update', '{"id":1}');
SELECT dnr_check('Nope', 'read', '{}');
SELECT dnr_check('Task', 'frobnicate', '{}');
SELECT dnr_check('Task', 'read', '{not json');
SELECT dnr_check('Task', 'read', '[1]');
SELECT dnr_check('Task', 'read', '{"owner_id":"bob"}');
