-- The tenant context: readers, setters, transaction scope, validation.
-- Runs as the application role `app` (no superuser, no BYPASSRLS).
\c - app
SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user;

-- Nothing set: every reader says "no context".
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(),
       dnr.has_role('admin'), dnr.authenticated();

-- The default is transaction-local: inside the transaction it is visible...
BEGIN;
SELECT dnr.set_context('11111111-1111-1111-1111-111111111111',
                       '22222222-2222-2222-2222-222222222222', '{staff,admin}');
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(),
       dnr.has_role('admin'), dnr.has_role('guest'), dnr.has_role(NULL), dnr.authenticated();
COMMIT;
-- ...and gone after COMMIT (the empty string SET LOCAL leaves behind reads as NULL).
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(),
       dnr.has_role('admin'), dnr.authenticated();
SELECT current_setting('dnr.tenant_id', true) AS raw_setting_after_commit;

-- Gone after ROLLBACK too.
BEGIN;
SELECT dnr.set_tenant('11111111-1111-1111-1111-111111111111');
SELECT dnr.current_tenant();
ROLLBACK;
SELECT dnr.current_tenant();

-- Outside a transaction block, a local setting lasts only for its own statement.
SELECT dnr.set_tenant('11111111-1111-1111-1111-111111111111');
SELECT dnr.current_tenant();

-- One round trip: the setter and the query share one implicit transaction.
SELECT dnr.set_tenant('11111111-1111-1111-1111-111111111111') \; SELECT dnr.current_tenant() AS same_round_trip;
SELECT dnr.current_tenant() AS next_statement;

-- local => false makes it session-wide: it survives COMMIT...
BEGIN;
SELECT dnr.set_context('33333333-3333-3333-3333-333333333333', NULL, '{viewer}', local => false);
COMMIT;
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), dnr.authenticated();
-- ...a transaction-local override ends with its transaction...
BEGIN;
SELECT dnr.set_tenant('44444444-4444-4444-4444-444444444444');
SELECT dnr.current_tenant() AS overridden;
COMMIT;
SELECT dnr.current_tenant() AS session_value_again;
-- ...a session setting made in a transaction that rolls back is undone...
BEGIN;
SELECT dnr.set_tenant('55555555-5555-5555-5555-555555555555', local => false);
ROLLBACK;
SELECT dnr.current_tenant() AS still_the_old_session_value;
-- ...and clear_context() clears it.
SELECT dnr.clear_context();
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), dnr.authenticated();

-- A transaction-local value equal to the current one: the setters may skip
-- it, which nobody can tell apart from setting it.
SELECT dnr.set_tenant('88888888-8888-8888-8888-888888888888', local => false);
BEGIN;
SELECT dnr.set_tenant('88888888-8888-8888-8888-888888888888');
SELECT dnr.set_tenant('99999999-9999-9999-9999-999999999999', local => false);
COMMIT;
SELECT dnr.current_tenant() AS session_set_after_equal_local;
BEGIN;
SELECT dnr.set_tenant('99999999-9999-9999-9999-999999999999');
SAVEPOINT s;
SELECT dnr.set_tenant('88888888-8888-8888-8888-888888888888');
ROLLBACK TO s;
SELECT dnr.current_tenant() AS after_rollback_to_savepoint;
ROLLBACK;
SELECT dnr.current_tenant() AS after_rollback;
SELECT dnr.clear_context();

-- A new connection starts with no context.
SELECT dnr.set_tenant('33333333-3333-3333-3333-333333333333', local => false);
\c - app
SELECT dnr.current_tenant() AS after_reconnect;
-- Setting the context creates all three settings, also the parts left
-- empty, and they stay defined after the transaction (empty).
BEGIN;
SELECT dnr.set_context('33333333-3333-3333-3333-333333333333');
SELECT current_setting('dnr.tenant_id') AS tenant, current_setting('dnr.user_id') AS user_id,
       current_setting('dnr.roles') AS roles;
COMMIT;
SELECT current_setting('dnr.tenant_id') AS tenant, current_setting('dnr.user_id') AS user_id,
       current_setting('dnr.roles') AS roles;

-- Roles a call leaves out are cleared, hiding session roles for the
-- transaction (they come back after it) or replacing them for the session.
SELECT dnr.set_context('33333333-3333-3333-3333-333333333333', NULL, '{viewer}', local => false);
BEGIN;
SELECT dnr.set_context('33333333-3333-3333-3333-333333333333');
SELECT dnr.current_roles() AS roles_in_transaction, dnr.has_role('viewer') AS viewer;
COMMIT;
SELECT dnr.current_roles() AS session_roles_after_commit;
SELECT dnr.set_context('33333333-3333-3333-3333-333333333333', local => false);
SELECT dnr.current_roles() AS session_roles_after_set_context;
SELECT dnr.clear_context();

-- The individual setters; NULL clears a part.
BEGIN;
SELECT dnr.set_tenant('66666666-6666-6666-6666-666666666666');
SELECT dnr.set_user('77777777-7777-7777-7777-777777777777');
SELECT dnr.set_roles(ARRAY['editor', 'admin', 'editor']);
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), dnr.authenticated();
SELECT dnr.set_user(NULL);
SELECT dnr.set_roles(NULL);
SELECT dnr.current_user_id(), dnr.current_roles(), dnr.authenticated();
COMMIT;

-- uuids in any accepted spelling are stored canonically.
BEGIN;
SELECT dnr.set_tenant('{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}');
SELECT current_setting('dnr.tenant_id') AS stored, dnr.current_tenant();
COMMIT;

-- Invalid input is an error and changes nothing.
BEGIN;
SELECT dnr.set_context('11111111-1111-1111-1111-111111111111', NULL, '{staff}');
SAVEPOINT s;
SELECT dnr.set_context('22222222-2222-2222-2222-222222222222', NULL, ARRAY['ok', 'bad role']);
ROLLBACK TO s;
SELECT dnr.set_roles(ARRAY['admin,root']);
ROLLBACK TO s;
SELECT dnr.set_roles(ARRAY[NULL]::text[]);
ROLLBACK TO s;
SELECT dnr.set_roles(ARRAY['']);
ROLLBACK TO s;
SELECT dnr.set_tenant('not-a-uuid');
ROLLBACK TO s;
SELECT dnr.current_tenant(), dnr.current_roles() AS unchanged;
COMMIT;

-- A value written to the setting directly is read in every spelling a cast
-- to uuid accepts...
BEGIN;
SET LOCAL dnr.tenant_id = '{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}';
SET LOCAL dnr.user_id = 'AAAAAAAABBBBCCCCDDDDEEEEEEEEEEEE';
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.authenticated();
ROLLBACK;
-- ...and a malformed value is an error when read, never "no tenant".
BEGIN;
SET LOCAL dnr.tenant_id = 'garbage';
SELECT dnr.current_tenant();
ROLLBACK;
BEGIN;
SET LOCAL dnr.user_id = 'garbage';
SELECT dnr.authenticated();
ROLLBACK;

-- The readers are STABLE, PARALLEL SAFE C functions (nothing to inline when
-- a query is planned); the setters are volatile C functions; every context
-- function is executable by PUBLIC.
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result, l.lanname, p.provolatile, p.proparallel,
       p.prosecdef, has_function_privilege('app', p.oid, 'EXECUTE') AS app_can_execute
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'dnr'::regnamespace
   AND p.proname IN ('current_tenant', 'current_user_id', 'current_roles', 'has_role', 'authenticated',
                     'set_context', 'set_tenant', 'set_user', 'set_roles', 'clear_context')
 ORDER BY p.proname;

-- dnr.check() needs an applied policy.
SELECT dnr.check('Task', 'read', '{}');
