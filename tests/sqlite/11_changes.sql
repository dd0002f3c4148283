-- changes() and last_insert_rowid() after writes through enforced tables,
-- as ORMs read them (cursor.rowcount, lastrowid, better-sqlite3's .changes).
-- By default the enforced names are views, whose INSTEAD OF writes SQLite
-- does not count. After dnr_count_changes() (and on a locked connection)
-- they are served by TEMP virtual tables, whose writes SQLite counts. Known
-- limitation: a visible row that an update/delete rule then skips silently
-- is counted too.
.open target/sqlite-tests/changes.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
.print '# default: changes() stays 0 after a write through the view'
INSERT INTO tasks (id, owner_id, title) VALUES (5, '00000000-0000-0000-0000-00000000a11c', 'a5');
SELECT changes();
DELETE FROM tasks WHERE id = 5;
SELECT changes(), (SELECT count(*) FROM tasks);
.print '# dnr_count_changes(): changes() counts rows written; last_insert_rowid() is the new row'
SELECT dnr_count_changes();
INSERT INTO tasks (id, owner_id, title) VALUES (1, '00000000-0000-0000-0000-00000000a11c', 'a1'), (2, '00000000-0000-0000-0000-00000000a11c', 'a2');
SELECT changes(), last_insert_rowid();
UPDATE tasks SET title = title || '!';
SELECT changes();
UPDATE tasks SET title = 'nothing' WHERE id = 99;
SELECT changes();
DELETE FROM tasks WHERE id = 2;
SELECT changes();
.print '# rows of another tenant are not counted (not visible)'
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
UPDATE tasks SET title = 'hijacked';
SELECT changes();
DELETE FROM tasks;
SELECT changes();
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT id, title FROM tasks;
.print '# known limitation: a visible row the delete rule skips is counted (delete needs status != done)'
UPDATE tasks SET status = 'done' WHERE id = 1;
DELETE FROM tasks WHERE id = 1;
SELECT changes(), (SELECT count(*) FROM tasks WHERE id = 1);
.print '# the view itself (main.tasks) is enforced but not counted'
UPDATE main.tasks SET title = 'via view' WHERE id = 1;
SELECT changes(), (SELECT title FROM tasks WHERE id = 1);
.print '# locked: the same'
SELECT dnr_lock();
INSERT INTO tasks (id, owner_id, title) VALUES (3, '00000000-0000-0000-0000-00000000a11c', 'a3'), (4, '00000000-0000-0000-0000-00000000a11c', 'a4');
SELECT changes();
UPDATE tasks SET title = title || '?' WHERE id > 2;
SELECT changes();
DELETE FROM tasks WHERE id > 2;
SELECT changes();
SELECT id, title FROM tasks;
