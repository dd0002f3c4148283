-- Every query shape sees only the rows the policies allow: joins,
-- subqueries, CTEs, UNION, aggregates, window functions, views of the user.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
.print '# data: tenant A has tasks 1-3 and project 100; tenant B has tasks 10-11 and project 200'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'admin', 0);
INSERT INTO projects (id, name) VALUES (100, 'apollo');
INSERT INTO tasks (id, owner_id, title, priority, project_id) VALUES
  (1, '00000000-0000-0000-0000-00000000a11c', 'a1', 3, 100),
  (2, '00000000-0000-0000-0000-00000000a11c', 'a2', 1, 100),
  (3, '00000000-0000-0000-0000-00000000a11c', 'a3', 2, 200);
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000b0b', 'admin', 0);
INSERT INTO projects (id, name) VALUES (200, 'gemini');
INSERT INTO tasks (id, owner_id, title, priority, project_id) VALUES
  (10, '00000000-0000-0000-0000-000000000b0b', 'b10', 5, 200),
  (11, '00000000-0000-0000-0000-000000000b0b', 'b11', 4, 100);
.print '# as B'
.print '## join: B task 11 points at project 100 of A, which B cannot see'
SELECT t.id, p.name FROM tasks t LEFT JOIN projects p ON p.id = t.project_id ORDER BY t.id;
SELECT t.id, p.name FROM tasks t JOIN projects p ON p.id = t.project_id ORDER BY t.id;
.print '## subqueries'
SELECT id FROM tasks WHERE project_id IN (SELECT id FROM projects) ORDER BY id;
SELECT (SELECT count(*) FROM tasks), (SELECT max(priority) FROM tasks), (SELECT group_concat(name) FROM projects);
SELECT id FROM tasks WHERE EXISTS (SELECT 1 FROM tasks t2 WHERE t2.id = 1);
SELECT * FROM (SELECT id, title FROM tasks) ORDER BY id;
.print '## CTEs, recursive too'
WITH mine AS (SELECT id, priority FROM tasks) SELECT sum(priority), count(*) FROM mine;
WITH RECURSIVE ids(n) AS (SELECT min(id) FROM tasks UNION ALL SELECT n + 1 FROM ids WHERE n < 12) SELECT group_concat(n) FROM ids WHERE n IN (SELECT id FROM tasks);
.print '## UNION and friends'
SELECT id FROM tasks UNION SELECT id FROM projects ORDER BY 1;
SELECT project_id FROM tasks INTERSECT SELECT id FROM projects;
SELECT project_id FROM tasks EXCEPT SELECT id FROM projects;
.print '## aggregates and window functions'
SELECT count(*), sum(priority), min(id), max(id), avg(priority) FROM tasks;
SELECT project_id, count(*) FROM tasks GROUP BY project_id ORDER BY project_id;
SELECT id, row_number() OVER (ORDER BY id), sum(priority) OVER (), rank() OVER (ORDER BY priority DESC) FROM tasks ORDER BY id;
SELECT id, lag(id) OVER (ORDER BY id), lead(id) OVER (ORDER BY id) FROM tasks ORDER BY id;
.print '## the rowid of the view is not a way into storage'
SELECT rowid, id FROM tasks ORDER BY id;
.print '## a view of the user over an enforced table is enforced too'
CREATE VIEW task_summary AS SELECT count(*) AS n, group_concat(title) AS titles FROM tasks;
SELECT * FROM task_summary;
.print '## ORDER BY / LIMIT / OFFSET cannot skip into other tenants'
SELECT id FROM tasks ORDER BY id LIMIT 10 OFFSET 1;
.print '# as A: the same queries'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'admin', 0);
SELECT t.id, p.name FROM tasks t LEFT JOIN projects p ON p.id = t.project_id ORDER BY t.id;
SELECT count(*), sum(priority), min(id), max(id) FROM tasks;
SELECT * FROM task_summary;
SELECT id, row_number() OVER (ORDER BY id), sum(priority) OVER () FROM tasks ORDER BY id;
.print '# the read rule applies as well as the fence: carol (no role) sees only unowned or her rows'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c0', NULL, 0);
SELECT count(*) FROM tasks;
SELECT * FROM task_summary;
