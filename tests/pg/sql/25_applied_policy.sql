-- dnr.applied_policy(): the newest source applied by a role the caller is a
-- member of (superusers: the newest of all), for `dnr status`, read by
-- owners that hold no privilege on dnr.applied. Another owner's source and,
-- for an application role, any source stay hidden (dnr.check evaluates the
-- newest source without showing it).
CREATE ROLE dnr_second LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE SCHEMA second AUTHORIZATION dnr_second;
CREATE ROLE dnr_deployer LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE dnr_owner;
SELECT has_table_privilege('dnr_owner', 'dnr.applied', 'SELECT') AS owner_reads_applied,
       has_table_privilege('dnr_second', 'dnr.applied', 'SELECT') AS second_reads_applied,
       has_table_privilege('app', 'dnr.applied', 'SELECT') AS app_reads_applied;
-- nothing applied yet: no row, also for the superuser
SELECT * FROM dnr.applied_policy();

\c - dnr_owner
SELECT * FROM dnr.applied_policy();
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  access:
    read: true
$policy$);
SELECT dnr.apply($policy$
entity Task:
  table: tasks
  id: int pk
  title: text
  access:
    read: true
$policy$);
-- its newest source
SELECT id, mode, applied_by, source, applied_at <= now() AS applied_before_now FROM dnr.applied_policy();
SELECT source FROM dnr.applied a ORDER BY a.id DESC LIMIT 1;

\c - dnr_second
-- the first owner's source is not the second owner's business
SELECT * FROM dnr.applied_policy();
SET search_path = second;
SELECT dnr.apply($policy$
entity Item:
  table: items
  id: int pk
  access:
    read: true
$policy$);
RESET search_path;
SELECT id, mode, applied_by, source FROM dnr.applied_policy();

\c - dnr_owner
-- the second owner's apply is the database's newest; the first owner still
-- sees its own
SELECT id, applied_by, source FROM dnr.applied_policy();

\c - dnr_deployer
-- a member of dnr_owner sees dnr_owner's source
SELECT id, applied_by FROM dnr.applied_policy();

\c - app
-- an application role that applied nothing sees nothing: not through the
-- function, the registry, its operations or the table
SELECT * FROM dnr.applied_policy();
SELECT dnr._registry('applied_policy', '{}');
SELECT dnr._registry('applied_policy', '{"caller": 10}');
SELECT dnr._registry_run('applied_policy', '{}');
SELECT dnr._reg_applied_policy('dnr_owner'::regrole::oid, '{}');
SELECT source FROM dnr.applied;

\c - postgres
-- the superuser: the newest of all
SELECT id, mode, applied_by, source FROM dnr.applied_policy();
-- the newest row of dnr.applied, every column as stored
SELECT p.id = a.id AND p.source = a.source AND p.mode = a.mode
       AND p.applied_at = a.applied_at AND p.applied_by = a.applied_by AS newest_row
  FROM dnr.applied_policy() p, (SELECT * FROM dnr.applied ORDER BY id DESC LIMIT 1) a;

DROP SCHEMA second CASCADE;
DROP ROLE dnr_second, dnr_deployer;
