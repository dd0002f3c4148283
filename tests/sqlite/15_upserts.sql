-- Upserts on enforced tables from the sqlite3 shell (the `.load` path).
-- SQLite refuses an upsert on a view at prepare time, with its own message
-- (the extension cannot intercept it); dnr_exec(sql, params...) runs the
-- write as a DNR connection does, rewritten onto storage, and returns the
-- rows written: PostgreSQL's ON CONFLICT semantics under RLS.
.open target/sqlite-tests/upserts.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
-- Bob's row 7 in tenant B.
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title, code) VALUES (7, dnr_user(), ''bob''''s'', ''B7'')');
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
.print '# SQLite refuses an upsert on the view itself'
INSERT INTO tasks (id, owner_id, title) VALUES (1, dnr_user(), 'a') ON CONFLICT (id) DO UPDATE SET title = excluded.title;
.print '# dnr_exec: insert, then the same upsert updates (1 row each)'
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title', 1, dnr_user(), 'first');
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title', 1, dnr_user(), 'second');
SELECT id, title, tenant_id FROM tasks;
.print '# over tenant B key: DO NOTHING and OR IGNORE write 0 rows'
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title) VALUES (7, dnr_user(), ''x'') ON CONFLICT DO NOTHING');
SELECT dnr_exec('INSERT OR IGNORE INTO tasks (id, owner_id, title) VALUES (7, dnr_user(), ''x'')');
.print '# over tenant B key: DO UPDATE and OR REPLACE are refused'
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title) VALUES (7, dnr_user(), ''stolen'') ON CONFLICT (id) DO UPDATE SET title = excluded.title');
SELECT dnr_exec('INSERT OR REPLACE INTO tasks (id, owner_id, title) VALUES (7, dnr_user(), ''stolen'')');
.print '# a unique key of tenant B (code) the same way'
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title, code) VALUES (8, dnr_user(), ''x'', ''B7'') ON CONFLICT (code) DO UPDATE SET title = excluded.title');
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title, code) VALUES (8, dnr_user(), ''x'', ''B7'') ON CONFLICT DO NOTHING');
.print '# exact counts: UPDATE and DELETE of rows the rules skip count 0'
SELECT dnr_exec('UPDATE tasks SET status = ''done'' WHERE id = 1');
SELECT dnr_exec('DELETE FROM tasks WHERE id = 1');
SELECT dnr_exec('DELETE FROM tasks WHERE id = 7');
.print '# what dnr_exec does not run'
SELECT dnr_exec('SELECT * FROM tasks');
SELECT dnr_exec('ALTER TABLE tasks ADD COLUMN due TEXT');
SELECT dnr_exec('UPDATE tasks SET title = (SELECT group_concat(title) FROM _dnr_tasks)');
SELECT dnr_exec('INSERT INTO tasks (id, title) VALUES (1)');
.print '# tenant B row is as Bob left it'
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
SELECT id, title, code, owner_id FROM tasks;
.print '# with RETURNING: the stored rows as JSON'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT dnr_exec('INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id, title, tenant_id, status', 9, dnr_user(), 'nine');
SELECT dnr_exec('DELETE FROM tasks WHERE id IN (1, 7, 9) RETURNING id');
.print '# hostile statements: 100,000-deep nesting, bytes that are not UTF-8, a megabyte string'
SELECT length(dnr_exec('UPDATE tasks SET title = ' || replace(hex(zeroblob(100000)), '00', '(') || '1' || replace(hex(zeroblob(100000)), '00', ')')));
SELECT dnr_exec(x'ff00fe');
SELECT dnr_exec('DELETE FROM tasks WHERE title = ''' || replace(hex(zeroblob(1000000)), '0', 'x') || '''');
SELECT 'still serving';
