-- A database opened without the extension fails closed; a new connection
-- with the extension works without applying again (dnr_check included).
.open target/sqlite-tests/connections.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'a1');
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
INSERT INTO tasks (id, owner_id, title) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10');
.print '# without the extension: errors, not rows'
.open target/sqlite-tests/connections.db
SELECT * FROM tasks;
SELECT count(*) FROM tasks;
SELECT id FROM tasks WHERE id = 1;
INSERT INTO tasks (id, title) VALUES (2, 'no extension');
UPDATE tasks SET title = 'x';
DELETE FROM tasks;
SELECT * FROM projects;
SELECT count(*) FROM _dnr_tasks;
.print '# a new connection with the extension: nothing to apply again'
.open target/sqlite-tests/connections.db
.load ./target/release/libdnr
SELECT count(*) FROM tasks;
SELECT dnr_check('Task', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","owner_id":"00000000-0000-0000-0000-00000000a11c"}');
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT dnr_check('Task', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","owner_id":"00000000-0000-0000-0000-00000000a11c"}');
SELECT dnr_check('Task', 'read', '{"tenant_id":"bbbbbbbb-0000-0000-0000-000000000002","owner_id":"00000000-0000-0000-0000-00000000a11c"}');
SELECT id, title FROM tasks;
.print '# dnr_check agrees with what the view shows, row by row (trusted connection)'
SELECT s.id,
       dnr_check('Task', 'read', json_object('tenant_id', s.tenant_id, 'owner_id', s.owner_id, 'status', s.status)),
       s.id IN (SELECT id FROM tasks)
  FROM _dnr_tasks AS s ORDER BY s.id;
.print '# dnr_check on a database without policies'
.open :memory:
.load ./target/release/libdnr
SELECT dnr_check('Task', 'read', '{}');
