-- Tenant isolation for read, insert, update and delete through the enforced
-- names; moving a row to another tenant; no context at all.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
.print '# tenant A (alice) and tenant B (bob) each write their rows'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
INSERT INTO tasks (id, owner_id, title, code) VALUES (1, '00000000-0000-0000-0000-00000000A11C', 'a1', 'A-1');
INSERT INTO tasks (id, owner_id, title, code, status) VALUES (2, '00000000-0000-0000-0000-00000000a11c', 'a2', 'A-2', 'done');
INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES ('{AAAAAAAA-0000-0000-0000-000000000001}', 3, '00000000-0000-0000-0000-00000000a11c', 'a3 (tenant given, other spelling)');
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
INSERT INTO tasks (id, owner_id, title, code) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10', 'B-10');
INSERT INTO tasks (id, owner_id, title) VALUES (11, '00000000-0000-0000-0000-000000000b0b', 'b11');
.print '# read: bob sees only tenant B'
SELECT id, title, tenant_id, owner_id FROM tasks ORDER BY id;
SELECT count(*) FROM tasks;
SELECT * FROM tasks WHERE id = 1;
.print '# insert into another tenant is refused; so is a bad uuid'
INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 12, '00000000-0000-0000-0000-000000000b0b', 'planted');
INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES ('bbbbbbbb', 12, '00000000-0000-0000-0000-000000000b0b', 'bad tenant');
INSERT INTO tasks (id, owner_id, title) VALUES (12, 'bob', 'bad owner');
.print '# update and delete of tenant A rows touch nothing'
UPDATE tasks SET title = 'hacked' WHERE id = 1;
UPDATE tasks SET title = 'hacked' WHERE id < 10;
DELETE FROM tasks WHERE id IN (1, 2, 3);
.print '# moving a row of B to tenant A is refused'
UPDATE tasks SET tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001' WHERE id = 10;
UPDATE tasks SET tenant_id = NULL WHERE id = 10;
.print '# B updates and deletes its own rows'
UPDATE tasks SET title = 'b10 renamed' WHERE id = 10;
DELETE FROM tasks WHERE id = 11;
SELECT id, title FROM tasks ORDER BY id;
.print '# alice again: her rows are intact, the rows of B are invisible'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT id, title, tenant_id, owner_id, status FROM tasks ORDER BY id;
.print '# no context: no rows, no writes'
SELECT dnr_clear_context();
SELECT count(*) FROM tasks;
INSERT INTO tasks (id, title) VALUES (20, 'anonymous');
INSERT INTO tasks (tenant_id, id, title) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 20, 'anonymous with tenant');
UPDATE tasks SET title = 'x';
DELETE FROM tasks;
.print '# tenant without user: the create rule (authenticated) refuses'
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
INSERT INTO tasks (id, title) VALUES (21, 'no user');
SELECT id FROM tasks ORDER BY id;
.print '# every row is still in storage (trusted, unlocked connection)'
SELECT tenant_id, id, title FROM _dnr_tasks ORDER BY id;
