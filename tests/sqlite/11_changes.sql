-- Known limitation: changes() is 0 after a write through an enforced view
-- (SQLite does not count what INSTEAD OF triggers do); total_changes() does
-- count it. On a locked connection the enforced names are virtual tables and
-- changes() counts the visible rows a write targeted.
.open target/sqlite-tests/changes.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL);
.print '# unlocked: changes() stays 0; total_changes() moves'
SELECT total_changes();
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'a1'), (2, '00000000-0000-0000-0000-00000000a11c', 'a2');
SELECT changes(), total_changes();
UPDATE tasks SET title = title || '!';
SELECT changes(), total_changes();
DELETE FROM tasks WHERE id = 2;
SELECT changes(), total_changes();
.print '# locked: changes() counts the rows written through the locked table'
SELECT dnr_lock();
INSERT INTO tasks (id, owner_id, title) VALUES (3, '00000000-0000-0000-0000-00000000a11c', 'a3'), (4, '00000000-0000-0000-0000-00000000a11c', 'a4');
SELECT changes();
UPDATE tasks SET title = title || '?';
SELECT changes();
DELETE FROM tasks WHERE id > 2;
SELECT changes();
SELECT id, title FROM tasks;
