-- Relationship rules (`exists`): examples/teams.dnr through `.load` (views
-- and triggers), dnr_exec (the statement rewriter) and a locked connection.
-- A member sees the project, a non-member and a member of another tenant
-- do not, revoking the membership hides it in the next statement, an
-- editor-only update, `not exists`, NULL join values, and dnr_check.
.open target/sqlite-tests/exists.db
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('examples/teams.dnr'));
.print '# the index on the columns exists matches memberships on'
SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '_dnr_memberships' ORDER BY name;
.print '# an admin of tenant A seeds two projects; alice edits apollo, views gemini'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000ad', 'admin', 0);
INSERT INTO projects (id, name) VALUES
  ('10000000-0000-0000-0000-000000000001', 'apollo'),
  ('10000000-0000-0000-0000-000000000002', 'gemini'),
  ('10000000-0000-0000-0000-000000000003', 'mercury');
INSERT INTO memberships (id, project_id, user_id, role) VALUES
  ('20000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'editor'),
  ('20000000-0000-0000-0000-000000000002', '10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-00000000a11c', 'viewer'),
  ('20000000-0000-0000-0000-000000000003', '10000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000b0b', 'editor');
.print '# tenant B has a project with alice as member (same user id)'
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000ad', 'admin', 0);
INSERT INTO projects (id, name) VALUES ('10000000-0000-0000-0000-00000000000b', 'tenant b project');
INSERT INTO memberships (id, project_id, user_id, role) VALUES
  ('20000000-0000-0000-0000-00000000000b', '10000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000a11c', 'editor');
.print '# and a membership of tenant B naming a project of tenant A (the related fence applies)'
INSERT INTO memberships (id, project_id, user_id, role) VALUES
  ('20000000-0000-0000-0000-0000000000bb', '10000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-00000000a11c', 'editor');
.print '# alice in A: apollo and gemini, not mercury (of bob) nor the B-side membership of mercury'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT name FROM projects ORDER BY name;
.print '# the listing probes memberships through the index (no scan of memberships)'
EXPLAIN QUERY PLAN SELECT name FROM projects;
.print '# editor-only update: apollo is updated, gemini (viewer) is skipped'
SELECT dnr_exec('UPDATE projects SET name = name || ''*''');
SELECT name FROM projects ORDER BY name;
.print '# dnr_check agrees: update gemini no, read gemini yes, read mercury no'
SELECT dnr_check('Project', 'update', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","id":"10000000-0000-0000-0000-000000000002","name":"gemini"}');
SELECT dnr_check('Project', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","id":"10000000-0000-0000-0000-000000000002","name":"gemini"}');
SELECT dnr_check('Project', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","id":"10000000-0000-0000-0000-000000000003","name":"mercury"}');
.print '# carol (no membership) sees nothing; alice in tenant B sees only the project of B'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c0', NULL, 0);
SELECT count(*) FROM projects;
SELECT dnr_set_context('bbbbbbbb-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT name FROM projects ORDER BY name;
.print '# documents: alice writes one in apollo; bob cannot read it (no membership); a NULL project_id never joins'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
INSERT INTO documents (id, project_id, owner_id, title) VALUES
  ('30000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'plan');
.print '# alice cannot create a document in mercury (not a member): refused'
INSERT INTO documents (id, project_id, owner_id, title) VALUES
  ('30000000-0000-0000-0000-000000000002', '10000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-00000000a11c', 'sneaky');
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
SELECT count(*) FROM documents;
.print '# a NULL project_id: the project clause is NULL, so only the owner reads it (the admin does not)'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000ad', 'admin', 0);
SELECT dnr_check('Document', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","id":"30000000-0000-0000-0000-000000000009","project_id":null,"owner_id":"00000000-0000-0000-0000-000000000b0b","title":"orphan"}');
.print '# not exists: the admin cannot delete apollo (it has an editor) but can delete gemini (only a viewer)'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'admin', 0);
SELECT dnr_exec('DELETE FROM projects WHERE name LIKE ''apollo%''');
SELECT dnr_exec('DELETE FROM projects WHERE name = ''gemini''');
SELECT name FROM projects ORDER BY name;
.print '# revoking: the admin deletes the apollo membership of alice; her next statement no longer sees apollo'
DELETE FROM memberships WHERE id = '20000000-0000-0000-0000-000000000001';
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', NULL, 0);
SELECT count(*) FROM projects;
.print '# locked: bob in A, his SQL cannot reach storage; he sees mercury, his editor update goes through dnr_exec and the lock'
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000b0b', NULL, 0);
SELECT dnr_lock();
SELECT name FROM projects ORDER BY name;
UPDATE projects SET name = 'mercury 2';
SELECT changes();
SELECT dnr_exec('UPDATE projects SET name = ''mercury 3'' RETURNING name');
SELECT name FROM projects ORDER BY name;
SELECT count(*) FROM memberships;
SELECT count(*) FROM _dnr_memberships;
SELECT count(*) FROM projects WHERE EXISTS (SELECT 1 FROM _dnr_memberships);
.print '# dnr_check_reason (still bob, locked): the exists clause that failed is named'
SELECT dnr_check_reason('Project', 'read', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","id":"10000000-0000-0000-0000-000000000001","name":"apollo"}');
SELECT dnr_check_reason('Project', 'update', '{"tenant_id":"aaaaaaaa-0000-0000-0000-000000000001","id":"10000000-0000-0000-0000-000000000003","name":"mercury 3"}');
