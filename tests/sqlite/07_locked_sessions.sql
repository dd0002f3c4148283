-- The locked mode as a host uses it: one connection per session, context
-- set by trusted code, then dnr_lock(), then the user's SQL. Isolation,
-- owner rules, refused writes, conflicts and query shapes through the
-- locked tables, and changes() counting writes.
.open target/sqlite-tests/sessions.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
.print '# session: alice in A (admin) seeds rows, locked'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'admin', 0);
SELECT dnr_lock();
INSERT INTO projects (id, name) VALUES (100, 'apollo');
INSERT INTO tasks (id, owner_id, title, code, priority, project_id) VALUES
  (1, '00000000-0000-0000-0000-00000000a11c', 'a1', 'A-1', 3, 100),
  (2, '00000000-0000-0000-0000-00000000a11c', 'a2', 'A-2', 1, 100),
  (3, NULL, 'a3 unowned', NULL, 2, 200);
SELECT changes(), total_changes() > 0;
SELECT id, title, status, tenant_id FROM tasks ORDER BY id;
.print '# session: bob in B, locked'
.open target/sqlite-tests/sessions.db
.load ./target/release/libdnr
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
SELECT dnr_lock();
SELECT count(*) FROM tasks;
INSERT INTO tasks (id, owner_id, title, code, priority, project_id) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10', 'B-10', 5, 100);
INSERT INTO tasks (id, owner_id, title) VALUES (11, '00000000-0000-0000-0000-000000000b0b', 'b11');
SELECT changes();
SELECT id, title FROM tasks ORDER BY id;
SELECT * FROM tasks WHERE id = 1;
SELECT id FROM tasks WHERE id BETWEEN 1 AND 100 ORDER BY id;
SELECT id FROM tasks WHERE title > 'a' ORDER BY id;
SELECT id FROM tasks WHERE code IS NOT NULL ORDER BY id;
SELECT t.id, p.name FROM tasks t LEFT JOIN projects p ON p.id = t.project_id ORDER BY t.id;
SELECT a.id, b.id FROM tasks a JOIN tasks b ON b.id > a.id ORDER BY 1, 2;
WITH mine AS (SELECT * FROM tasks) SELECT count(*), sum(priority) FROM mine;
SELECT id, rank() OVER (ORDER BY priority DESC) FROM tasks ORDER BY id;
SELECT id FROM tasks UNION ALL SELECT id FROM projects ORDER BY 1;
SELECT (SELECT count(*) FROM tasks WHERE id < 10);
.print '## refused writes'
INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 12, '00000000-0000-0000-0000-000000000b0b', 'plant in A');
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'collide with A');
INSERT OR REPLACE INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'replace A');
REPLACE INTO tasks (id, owner_id, title, code) VALUES (12, '00000000-0000-0000-0000-000000000b0b', 'take code', 'A-1');
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-000000000b0b', 'upsert') ON CONFLICT (id) DO UPDATE SET title = 'x';
UPDATE tasks SET tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001' WHERE id = 10;
UPDATE tasks SET owner_id = 'not a uuid' WHERE id = 10;
INSERT INTO projects (id, name) VALUES (201, 'no admin role');
.print '## allowed writes; changes() counts the visible rows a write targeted'
UPDATE tasks SET title = title || '!' WHERE id >= 10;
SELECT changes();
UPDATE tasks SET title = 'nothing' WHERE id = 1;
SELECT changes();
INSERT OR REPLACE INTO tasks (id, owner_id, title, code) VALUES (10, '00000000-0000-0000-0000-000000000b0b', 'b10 replaced', 'B-10');
DELETE FROM tasks WHERE id = 11;
SELECT changes();
DELETE FROM tasks WHERE id = 1;
SELECT changes();
SELECT id, title, code FROM tasks ORDER BY id;
.print '## the session cannot leave its context'
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT count(*) FROM main.tasks;
.print '# session: carol in A, no role: reads only unowned rows, may not update or delete them (skipped silently, yet counted by changes())'
.open target/sqlite-tests/sessions.db
.load ./target/release/libdnr
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c0', NULL, 0);
SELECT dnr_lock();
SELECT id, title FROM tasks ORDER BY id;
UPDATE tasks SET title = 'carol';
SELECT changes();
DELETE FROM tasks;
SELECT changes();
INSERT INTO tasks (id, owner_id, title) VALUES (4, '00000000-0000-0000-0000-00000000a11c', 'as alice');
INSERT INTO tasks (id, owner_id, title) VALUES (4, '00000000-0000-0000-0000-0000000000c0', 'carol own');
SELECT id, title, status FROM tasks ORDER BY id;
.print '# session: guest alice cannot delete (forbid)'
.open target/sqlite-tests/sessions.db
.load ./target/release/libdnr
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'guest', 0);
SELECT dnr_lock();
DELETE FROM tasks WHERE id = 2;
SELECT changes();
.print '# session: no context at all'
.open target/sqlite-tests/sessions.db
.load ./target/release/libdnr
SELECT dnr_lock();
SELECT count(*) FROM tasks;
SELECT count(*) FROM plans;
INSERT INTO tasks (id, title) VALUES (50, 'anonymous');
.print '# trusted view of storage at the end'
.open target/sqlite-tests/sessions.db
SELECT tenant_id, id, title, owner_id FROM _dnr_tasks ORDER BY tenant_id, id;
