-- A context set in SQL lasts for its transaction, as PostgreSQL's setters
-- (issue 27, point 9): a pooled connection never hands one request's tenant
-- to the next. `local => 0` (the last argument) sets it for the session.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
BEGIN;
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000a11c');
INSERT INTO tasks (id, title, owner_id) VALUES (1, 'a1', '00000000-0000-4000-8000-00000000a11c');
COMMIT;
BEGIN;
SELECT dnr_set_context('bbbbbbbb-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000b0b');
INSERT INTO tasks (id, title, owner_id) VALUES (2, 'b2', '00000000-0000-4000-8000-000000000b0b');
COMMIT;
.print '# request 1 (tenant a) in a transaction sees its row'
BEGIN;
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000a11c');
SELECT dnr_tenant(), group_concat(title) FROM tasks;
COMMIT;
.print '# request 2 on the same connection sets no context: nothing of tenant a'
SELECT dnr_tenant(), dnr_user(), dnr_authenticated(), (SELECT count(*) FROM tasks);
.print '# a set in autocommit lasts for that statement only'
SELECT dnr_set_tenant('aaaaaaaa-0000-4000-8000-000000000001') IS NULL, dnr_tenant();
SELECT dnr_tenant();
.print '# a rolled back transaction ends its context too'
BEGIN;
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001');
SELECT dnr_tenant();
ROLLBACK;
SELECT dnr_tenant();
.print '# a savepoint released as the outermost transaction ends it'
SAVEPOINT request;
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001');
SELECT dnr_tenant();
RELEASE request;
SELECT dnr_tenant();
.print '# the session form lasts until changed; a local context hides it for one transaction'
SELECT dnr_set_context('bbbbbbbb-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000b0b', NULL, 0);
SELECT dnr_tenant(), group_concat(title) FROM tasks;
BEGIN;
SELECT dnr_set_tenant('aaaaaaaa-0000-4000-8000-000000000001');
SELECT dnr_tenant(), dnr_user();
COMMIT;
SELECT dnr_tenant(), dnr_user(), group_concat(title) FROM tasks;
.print '# dnr_clear_context clears the session too (as dnr.clear_context)'
SELECT dnr_clear_context();
SELECT dnr_tenant(), dnr_user();
.print '# `local` is 1 or 0'
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001', NULL, NULL, 'yes');
SELECT dnr_set_tenant('aaaaaaaa-0000-4000-8000-000000000001', 2);
SELECT dnr_set_context('aaaaaaaa-0000-4000-8000-000000000001', NULL, NULL, 0, 1);
SELECT dnr_tenant();
