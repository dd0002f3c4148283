-- DNR 0.1.0 -> 0.2.0 (ALTER EXTENSION dnr UPDATE TO '0.2.0').
--
-- What changes (docs/postgres.md):
--   - the migration history dnr.migrations with dnr.lock_migrations,
--     dnr.migration_history, dnr.record_migration and the versioned
--     dnr.migrate_tenants(version, name, ddl);
--   - owners that hold no privilege on DNR's registries apply policies and
--     manage their tenants: the records are written through dnr._registry
--     (the calling role, checked) and dnr._reg_* (the extension owner's
--     rights); dnr.list_tenants(); dnr.applied_policy() (the newest source
--     the caller's roles applied); dnr.policies shows each role its own
--     tables' policies;
--   - (issue 27) registry writes compiled by DNR (dnr._compile_applied),
--     create_tenant running only the caller's own policy, migration history
--     keyed by the schema's oid (store_oid) and forgotten by drop_tenant,
--     lock_migrations on a row of dnr.migration_locks for the store's
--     owners only, bounded lock waits that name the holder, and
--     dnr.relation_tenant for the schema fence on Citus.
-- The functions below replace their 0.1.0 definitions with the 0.2.0 ones
-- (the same text as dnr-pgext/src/sql.rs; tests/pg/shell/23_upgrade.sh
-- compares an updated database with a fresh 0.2.0 one). The C functions of
-- 0.1.0 keep their symbols in the 0.2.0 library.

\echo Use "ALTER EXTENSION dnr UPDATE TO '0.2.0'" to load this file. \quit

-- Migration history per store (the schema holding the migrated tables: a
-- tenant schema in schema mode, e.g. public in row_level mode), shared with
-- the `dnr migrate` command. Written through dnr.record_migration and read
-- through dnr.migration_history. A store is its schema's identity (oid),
-- not its name: a schema created later under the same name starts with no
-- history, and dnr.drop_tenant takes the history with the schema.
CREATE TABLE dnr.migrations (
    store name NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    duration interval NOT NULL,
    store_oid oid NOT NULL,
    PRIMARY KEY (store_oid, version)
);

-- One row per store whose migrations were ever locked: dnr.lock_migrations
-- locks it (FOR UPDATE). A row lock on a table no other role may update,
-- rather than an advisory lock, whose key any role could take.
CREATE TABLE dnr.migration_locks (
    store_oid oid PRIMARY KEY
);

REVOKE ALL ON dnr.migrations, dnr.migration_locks FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('dnr.migrations', '');

-- Tenants being moved (`dnr tenants move`): setting one as the context is
-- refused, with a retryable error, except for the role that holds it, in
-- maintenance (dnr.maintenance = on). Written through dnr.hold_tenant and
-- dnr.release_tenant by roles that applied a policy here.
CREATE TABLE dnr.held_tenants (
    tenant uuid PRIMARY KEY,
    held_by name NOT NULL,
    held_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
REVOKE ALL ON dnr.held_tenants FROM PUBLIC;

-- Whether role may not take tenant as its context now: it is held, and
-- role is not its holder in maintenance. Asked by the check of
-- dnr.tenant_id (with the current role), also while the library loads, so
-- plain SQL: no C function of the library.
CREATE FUNCTION dnr._tenant_held(tenant uuid, role name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT EXISTS (
    SELECT 1 FROM dnr.held_tenants h
     WHERE h.tenant = $1
       AND NOT (h.held_by = $2
                AND COALESCE(pg_catalog.current_setting('dnr.maintenance', true), '') = 'on'))
$$;

-- The registry's C functions (registry.rs).
CREATE FUNCTION dnr."_caller"() RETURNS oid /* pg_sys :: Oid */
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_caller_wrapper';

CREATE FUNCTION dnr."_registry"(
	"op" TEXT, /* & str */
	"args" jsonb /* JsonB */
) RETURNS jsonb /* Option < JsonB > */
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_registry_wrapper';

-- The compilation the registry records (lib.rs) and the tenant of a
-- table's schema (context.rs).
CREATE FUNCTION dnr."_compile_applied"(
	"source" TEXT /* &str */
) RETURNS jsonb /* JsonB */
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_compile_applied_wrapper';

CREATE FUNCTION dnr."relation_tenant"(
	"rel" oid /* pg_sys :: Oid */
) RETURNS uuid /* Option < Uuid > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'relation_tenant_wrapper';

------------------------------------------------------------------------------
-- The registries' bookkeeping, for roles that own their tables and tenant
-- schemas but hold no privilege on DNR's tables.
--
-- DDL (policies, tables, schemas) always runs with the caller's privileges
-- (the functions that run it are SECURITY INVOKER), so PostgreSQL itself
-- refuses to change a table or schema the caller does not own. Only the
-- records in dnr.applied, dnr.managed_tables, dnr.tenants and
-- dnr.migrations are written with the extension owner's rights, by the
-- dnr._reg_* functions below, each of which checks that the calling role
-- may: it is a member of the owner of each table it records, of the owner
-- of a tenant's schema (superusers: every tenant), of the owner of a
-- migration store or has CREATE on it.
--
-- A SECURITY DEFINER function cannot tell who called it (current_user is
-- its owner), so the calling role is taken where it is known: dnr._registry
-- (a C function, SECURITY INVOKER) reads the current user id, keeps it for
-- the one call of dnr._registry_run (SECURITY DEFINER) it makes, which takes
-- it with dnr._caller() (an error outside that call) and passes it to the
-- dnr._reg_* function of the operation. Those functions are not executable
-- by PUBLIC, so no role can pass another role's id.
------------------------------------------------------------------------------

-- The caller's tenants: those whose schema it owns (is a member of the
-- owner), every tenant for a superuser; oldest first.
CREATE FUNCTION dnr._reg_tenants(caller oid) RETURNS SETOF dnr.tenants
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.*
  FROM dnr.tenants t
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = $1 AND r.rolsuper)
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                WHERE n.nspname = t.schema_name
                  AND pg_catalog.pg_has_role($1, n.nspowner, 'MEMBER'))
 ORDER BY t.created_at, t.id
$$;

-- Raises unless caller may record every table in rels (a member of its
-- owner); the tables must exist and not be temporary (every role may
-- create those).
CREATE FUNCTION dnr._reg_check_tables(caller oid, rels oid[]) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel oid;
BEGIN
    FOREACH v_rel IN ARRAY COALESCE($2, '{}') LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                        WHERE c.oid = v_rel AND c.relkind IN ('r', 'p')) THEN
            RAISE EXCEPTION 'dnr: no table with oid %', v_rel USING ERRCODE = 'undefined_table';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = v_rel AND c.relpersistence = 't') THEN
            RAISE EXCEPTION 'dnr: temporary table % cannot be managed', v_rel::regclass
                  USING ERRCODE = 'feature_not_supported';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                        WHERE c.oid = v_rel AND pg_catalog.pg_has_role($1, c.relowner, 'MEMBER')) THEN
            RAISE EXCEPTION 'must be owner of table %', v_rel::regclass
                  USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
END
$$;

-- The store's schema oid, when caller owns it or has CREATE on it.
CREATE FUNCTION dnr._reg_check_store(caller oid, store name) RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nsp oid;
BEGIN
    SELECT n.oid INTO v_nsp FROM pg_catalog.pg_namespace n WHERE n.nspname = $2;
    IF v_nsp IS NULL THEN
        RAISE EXCEPTION 'schema % does not exist', pg_catalog.quote_ident($2)
              USING ERRCODE = 'invalid_schema_name';
    END IF;
    IF $2 LIKE 'pg\_temp\_%' OR $2 LIKE 'pg\_toast\_temp\_%' THEN
        RAISE EXCEPTION 'dnr: temporary schema % has no migration history', $2
              USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT pg_catalog.has_schema_privilege($1, v_nsp, 'CREATE')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                        WHERE n.oid = v_nsp AND pg_catalog.pg_has_role($1, n.nspowner, 'MEMBER')) THEN
        RAISE EXCEPTION 'permission denied for schema %: the migration history of a schema is for its owner and roles with CREATE on it', pg_catalog.quote_ident($2)
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN v_nsp;
END
$$;

-- The operations. Each takes the calling role and its arguments as jsonb
-- and returns jsonb.
CREATE FUNCTION dnr._reg_lock_timeout() RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_timeout text := pg_catalog.current_setting('lock_timeout');
BEGIN
    IF v_timeout = '0' THEN
        PERFORM pg_catalog.set_config('lock_timeout', '30s', true);
    END IF;
    RETURN v_timeout;
END
$$;

CREATE FUNCTION dnr._reg_lock_tenants() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_timeout text := dnr._reg_lock_timeout();
    v_holders text;
BEGIN
    BEGIN
        LOCK TABLE dnr.tenants IN SHARE ROW EXCLUSIVE MODE;
    EXCEPTION WHEN lock_not_available THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('process %s (role %s)', l.pid, a.usename), ', ' ORDER BY l.pid)
          INTO v_holders
          FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'relation' AND l.relation = 'dnr.tenants'::regclass
           AND l.granted AND l.pid <> pg_catalog.pg_backend_pid()
           AND l.mode IN ('RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock',
                          'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock');
        RAISE EXCEPTION 'dnr: the tenant registry is locked by %', COALESCE(v_holders, 'another transaction')
              USING ERRCODE = 'lock_not_available',
                    HINT = pg_catalog.format('waited lock_timeout (%s)', pg_catalog.current_setting('lock_timeout'));
    END;
    PERFORM pg_catalog.set_config('lock_timeout', v_timeout, true);
END
$$;

CREATE FUNCTION dnr._reg_lock_store(nsp oid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_timeout text := dnr._reg_lock_timeout();
    v_holders text;
BEGIN
    BEGIN
        INSERT INTO dnr.migration_locks (store_oid) VALUES ($1) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM dnr.migration_locks k WHERE k.store_oid = $1 FOR UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        -- the holder's marker (below): a row lock taken in a subtransaction
        -- names no process in pg_locks
        SELECT pg_catalog.string_agg(pg_catalog.format('process %s (role %s)', l.pid, a.usename), ', ' ORDER BY l.pid)
          INTO v_holders
          FROM pg_catalog.pg_locks l
          LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.classid::bigint = 6581874
           AND l.objid::bigint = ($1::bigint & 2147483647) AND l.objsubid = 2
           AND l.granted AND l.pid <> pg_catalog.pg_backend_pid();
        RAISE EXCEPTION 'dnr: the migration history of schema % is locked by %',
                        pg_catalog.quote_ident(COALESCE((SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid = $1), $1::text)),
                        COALESCE(v_holders, 'another transaction')
              USING ERRCODE = 'lock_not_available',
                    HINT = pg_catalog.format('waited lock_timeout (%s)', pg_catalog.current_setting('lock_timeout'));
    END;
    -- A marker that names this process to those who wait: a shared
    -- advisory lock (it locks nothing; the row lock above does).
    PERFORM pg_catalog.pg_try_advisory_xact_lock_shared(6581874, ($1::bigint & 2147483647)::integer);
    PERFORM pg_catalog.set_config('lock_timeout', v_timeout, true);
END
$$;

CREATE FUNCTION dnr._reg_forget_dropped_stores() RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
DELETE FROM dnr.migrations m
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.oid = m.store_oid);
DELETE FROM dnr.migration_locks k
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.oid = k.store_oid);
$$;

CREATE FUNCTION dnr._reg_lock_migrations(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nsp oid;
BEGIN
    v_nsp := dnr._reg_check_store($1, $2 ->> 'store');
    PERFORM dnr._reg_forget_dropped_stores();
    PERFORM dnr._reg_lock_store(v_nsp);
    RETURN NULL;
END
$$;

CREATE FUNCTION dnr._reg_list_tenants(caller oid, args jsonb) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'id', t.id, 'name', t.name, 'schema_name', t.schema_name, 'created_at', t.created_at)), '[]')
  FROM dnr._reg_tenants($1) t
$$;

-- For dnr.apply in tenancy mode schema: locks the registry against a
-- concurrent create_tenant (which either committed first and is seen here,
-- or waits for this apply and gets its policy) and returns the caller's
-- tenant schemas.
CREATE FUNCTION dnr._reg_apply_schemas(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM dnr._reg_tenants($1))
       AND NOT pg_catalog.has_database_privilege($1, pg_catalog.current_database(), 'CREATE') THEN
        RETURN '[]';
    END IF;
    PERFORM dnr._reg_lock_tenants();
    RETURN (SELECT COALESCE(pg_catalog.jsonb_agg(t.schema_name), '[]') FROM dnr._reg_tenants($1) t);
END
$$;

-- The tables an earlier apply manages that the caller owns (and that
-- still exist), as oids.
CREATE FUNCTION dnr._reg_applied_tables(caller oid, args jsonb) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT COALESCE(pg_catalog.jsonb_agg(m.tbl::oid), '[]')
  FROM dnr.managed_tables m
  JOIN pg_catalog.pg_class c ON c.oid = m.tbl
 WHERE m.managed_by = 'apply' AND pg_catalog.pg_has_role($1, c.relowner, 'MEMBER')
$$;

-- After dnr.apply ran its DDL: forgets the caller's tables an earlier apply
-- managed (and records of dropped tables), records args.rels and the
-- source. The newest source is what dnr.check evaluates, so a source that
-- applies to no table (e.g. mode schema before any tenant) is recorded
-- only for a role that may create schemas in the database (create
-- tenants) or a superuser: not for an application role.
CREATE FUNCTION dnr._reg_record_apply(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rels oid[];
    v_compiled jsonb;
BEGIN
    SELECT COALESCE(pg_catalog.array_agg(x.value::oid), '{}') INTO v_rels
      FROM pg_catalog.jsonb_array_elements_text($2 -> 'rels') AS x(value);
    PERFORM dnr._reg_check_tables($1, v_rels);
    IF pg_catalog.cardinality(v_rels) = 0
       AND NOT pg_catalog.has_database_privilege($1, pg_catalog.current_database(), 'CREATE') THEN
        RAISE EXCEPTION 'dnr.apply: the policy applies to no table of yours'
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'an empty policy, or mode schema before any tenant, needs CREATE on the database';
    END IF;
    IF $2 ->> 'source' IS NULL THEN
        RAISE EXCEPTION 'dnr: a policy source is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_compiled := dnr._compile_applied($2 ->> 'source');
    DELETE FROM dnr.managed_tables m
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = m.tbl)
        OR (m.managed_by = 'apply'
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                         WHERE c.oid = m.tbl AND pg_catalog.pg_has_role($1, c.relowner, 'MEMBER')));
    INSERT INTO dnr.managed_tables (tbl, managed_by)
    SELECT r.oid::regclass, 'apply' FROM pg_catalog.unnest(v_rels) AS r(oid)
    ON CONFLICT (tbl) DO UPDATE
       SET tenant_column = NULL, managed_by = 'apply', updated_at = pg_catalog.clock_timestamp();
    INSERT INTO dnr.applied (source, mode, ddl, tables, applied_by)
    SELECT $2 ->> 'source', v_compiled ->> 'mode', v_compiled ->> 'ddl',
           ARRAY(SELECT pg_catalog.jsonb_array_elements_text(v_compiled -> 'tables')),
           r.rolname
      FROM pg_catalog.pg_roles r WHERE r.oid = $1;
    RETURN NULL;
END
$$;

-- Records args.rels (tables a new tenant's schema got from the newest
-- policy) as managed by apply, leaving existing records alone.
CREATE FUNCTION dnr._reg_add_applied_tables(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rels oid[];
BEGIN
    SELECT COALESCE(pg_catalog.array_agg(x.value::oid), '{}') INTO v_rels
      FROM pg_catalog.jsonb_array_elements_text($2 -> 'rels') AS x(value);
    PERFORM dnr._reg_check_tables($1, v_rels);
    INSERT INTO dnr.managed_tables (tbl, managed_by)
    SELECT r.oid::regclass, 'apply' FROM pg_catalog.unnest(v_rels) AS r(oid)
    ON CONFLICT (tbl) DO NOTHING;
    RETURN NULL;
END
$$;

-- Records args.tbl as isolated by enable_tenant_isolation on
-- args.tenant_column.
CREATE FUNCTION dnr._reg_record_isolation(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel oid := ($2 ->> 'tbl')::oid;
BEGIN
    PERFORM dnr._reg_check_tables($1, ARRAY[v_rel]);
    INSERT INTO dnr.managed_tables (tbl, tenant_column, managed_by)
    VALUES (v_rel::regclass, $2 ->> 'tenant_column', 'isolation')
    ON CONFLICT (tbl) DO UPDATE
       SET tenant_column = EXCLUDED.tenant_column, managed_by = 'isolation',
           updated_at = pg_catalog.clock_timestamp();
    RETURN NULL;
END
$$;

-- Registers the tenant args.id (args.name) whose schema tenant_<hex> the
-- caller has just created (so owns); returns the schema and the newest
-- policy applied by a role the caller is a member of (mode, ddl, tables),
-- which create_tenant runs in the schema when its mode is schema.
CREATE FUNCTION dnr._reg_register_tenant(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid := ($2 ->> 'id')::uuid;
    v_schema name;
    v_source text;
BEGIN
    v_schema := 'tenant_' || pg_catalog.replace(v_id::text, '-', '');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                    WHERE n.nspname = v_schema AND pg_catalog.pg_has_role($1, n.nspowner, 'MEMBER')) THEN
        RAISE EXCEPTION 'must be owner of schema %', v_schema USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO dnr.tenants (id, name, schema_name) VALUES (v_id, COALESCE($2 ->> 'name', ''), v_schema);
    SELECT a.source INTO v_source
      FROM dnr.applied a
     WHERE a.applied_by = (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = $1)
     ORDER BY a.id DESC LIMIT 1;
    RETURN pg_catalog.jsonb_build_object('schema', v_schema, 'source', v_source);
END
$$;

-- Unregisters the tenant args.id: the caller must own its schema (a
-- superuser may also drop a tenant whose schema is gone). Returns the
-- schema, which drop_tenant then drops with the caller's privileges.
CREATE FUNCTION dnr._reg_unregister_tenant(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid := ($2 ->> 'id')::uuid;
    v_schema name;
BEGIN
    SELECT t.schema_name INTO v_schema FROM dnr.tenants t WHERE t.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant %', v_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM dnr._reg_tenants($1) t WHERE t.id = v_id) THEN
        RAISE EXCEPTION 'must be owner of schema % to drop tenant %', v_schema, v_id
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM 1 FROM dnr.tenants t WHERE t.id = v_id FOR UPDATE;
    DELETE FROM dnr.tenants t WHERE t.id = v_id;
    DELETE FROM dnr.migrations m
     USING pg_catalog.pg_namespace n
     WHERE n.nspname = v_schema AND m.store_oid = n.oid;
    DELETE FROM dnr.managed_tables m
     USING pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = m.tbl AND n.nspname = v_schema;
    RETURN pg_catalog.to_jsonb(v_schema);
END
$$;

CREATE FUNCTION dnr._reg_migration_history(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nsp oid;
BEGIN
    v_nsp := dnr._reg_check_store($1, $2 ->> 'store');
    RETURN (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'version', m.version, 'name', m.name, 'checksum', m.checksum,
                       'applied_at', m.applied_at, 'duration', m.duration) ORDER BY m.version), '[]')
              FROM dnr.migrations m WHERE m.store_oid = v_nsp);
END
$$;

CREATE FUNCTION dnr._reg_record_migration(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nsp oid;
BEGIN
    v_nsp := dnr._reg_check_store($1, $2 ->> 'store');
    PERFORM dnr._reg_forget_dropped_stores();
    INSERT INTO dnr.migrations (store, version, name, checksum, duration, store_oid)
    VALUES ($2 ->> 'store', ($2 ->> 'version')::integer, $2 ->> 'name', $2 ->> 'checksum',
            ($2 ->> 'duration')::interval, v_nsp);
    RETURN NULL;
END
$$;

-- The newest source applied by a role the caller is a member of (for a
-- superuser, the newest of all), as a one-element array; empty when there
-- is none. Never another owner's source, nor any source for a role that
-- applied nothing (application roles: dnr.check evaluates the source
-- without showing it).
CREATE FUNCTION dnr._reg_applied_policy(caller oid, args jsonb) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'id', n.id, 'source', n.source, 'mode', n.mode,
           'applied_at', n.applied_at, 'applied_by', n.applied_by)), '[]')
  FROM (SELECT a.id, a.source, a.mode, a.applied_at, a.applied_by
          FROM dnr.applied a
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = $1 AND r.rolsuper)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                        WHERE r.rolname = a.applied_by AND pg_catalog.pg_has_role($1, r.oid, 'MEMBER'))
         ORDER BY a.id DESC LIMIT 1) n
$$;

-- Holds a tenant for the caller, which must have applied a policy here
-- (or be a superuser); a tenant another role holds is an error.
CREATE FUNCTION dnr._reg_hold_tenant(caller oid, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = $1);
    v_holder name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = $1 AND r.rolsuper)
       AND NOT EXISTS (SELECT 1 FROM dnr.applied a WHERE a.applied_by = v_role) THEN
        RAISE EXCEPTION 'dnr: only a role that applied a policy in this database may hold a tenant'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO dnr.held_tenants (tenant, held_by) VALUES (($2 ->> 'tenant')::uuid, v_role)
        ON CONFLICT (tenant) DO NOTHING;
    SELECT h.held_by INTO v_holder FROM dnr.held_tenants h WHERE h.tenant = ($2 ->> 'tenant')::uuid;
    IF v_holder <> v_role THEN
        RAISE EXCEPTION 'dnr: tenant % is held by role %', $2 ->> 'tenant', pg_catalog.quote_ident(v_holder)
            USING ERRCODE = 'object_in_use';
    END IF;
    RETURN '{}'::jsonb;
END
$$;

-- Releases the caller's hold (any hold, for a superuser).
CREATE FUNCTION dnr._reg_release_tenant(caller oid, args jsonb) RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
WITH gone AS (
    DELETE FROM dnr.held_tenants h
     WHERE h.tenant = ($2 ->> 'tenant')::uuid
       AND (h.held_by = (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = $1)
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = $1 AND r.rolsuper))
    RETURNING 1)
SELECT pg_catalog.jsonb_build_object('released', (SELECT count(*) FROM gone))
$$;

-- Runs one registry operation for the role dnr._registry read (see above).
CREATE FUNCTION dnr._registry_run(op text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := dnr._caller();
BEGIN
    CASE $1
        WHEN 'list_tenants' THEN RETURN dnr._reg_list_tenants(v_caller, $2);
        WHEN 'apply_schemas' THEN RETURN dnr._reg_apply_schemas(v_caller, $2);
        WHEN 'applied_tables' THEN RETURN dnr._reg_applied_tables(v_caller, $2);
        WHEN 'record_apply' THEN RETURN dnr._reg_record_apply(v_caller, $2);
        WHEN 'add_applied_tables' THEN RETURN dnr._reg_add_applied_tables(v_caller, $2);
        WHEN 'record_isolation' THEN RETURN dnr._reg_record_isolation(v_caller, $2);
        WHEN 'register_tenant' THEN RETURN dnr._reg_register_tenant(v_caller, $2);
        WHEN 'unregister_tenant' THEN RETURN dnr._reg_unregister_tenant(v_caller, $2);
        WHEN 'migration_history' THEN RETURN dnr._reg_migration_history(v_caller, $2);
        WHEN 'record_migration' THEN RETURN dnr._reg_record_migration(v_caller, $2);
        WHEN 'lock_migrations' THEN RETURN dnr._reg_lock_migrations(v_caller, $2);
        WHEN 'applied_policy' THEN RETURN dnr._reg_applied_policy(v_caller, $2);
        WHEN 'hold_tenant' THEN RETURN dnr._reg_hold_tenant(v_caller, $2);
        WHEN 'release_tenant' THEN RETURN dnr._reg_release_tenant(v_caller, $2);
        ELSE RAISE EXCEPTION 'dnr: unknown registry operation %', pg_catalog.quote_literal($1);
    END CASE;
END
$$;

REVOKE ALL ON FUNCTION dnr._reg_tenants(oid), dnr._reg_check_tables(oid, oid[]),
    dnr._reg_check_store(oid, name), dnr._reg_list_tenants(oid, jsonb),
    dnr._reg_apply_schemas(oid, jsonb), dnr._reg_applied_tables(oid, jsonb),
    dnr._reg_record_apply(oid, jsonb), dnr._reg_add_applied_tables(oid, jsonb),
    dnr._reg_record_isolation(oid, jsonb), dnr._reg_register_tenant(oid, jsonb),
    dnr._reg_unregister_tenant(oid, jsonb), dnr._reg_migration_history(oid, jsonb),
    dnr._reg_record_migration(oid, jsonb), dnr._reg_applied_policy(oid, jsonb),
    dnr._reg_lock_migrations(oid, jsonb), dnr._reg_lock_timeout(), dnr._reg_lock_tenants(),
    dnr._reg_lock_store(oid), dnr._reg_forget_dropped_stores(),
    dnr._reg_hold_tenant(oid, jsonb), dnr._reg_release_tenant(oid, jsonb)
  FROM PUBLIC;

-- The tenants whose schema the caller owns (every tenant for a superuser).
CREATE FUNCTION dnr.list_tenants()
RETURNS TABLE (id uuid, name text, schema_name name, created_at timestamptz)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.id, t.name, t.schema_name, t.created_at
  FROM pg_catalog.jsonb_to_recordset(dnr._registry('list_tenants', '{}'))
       AS t(id uuid, name text, schema_name name, created_at timestamptz)
$$;

-- The newest policy applied by a role the caller is a member of (for a
-- superuser, the newest of all); no row when there is none. What `dnr
-- status` compares with the policy file; dnr.check evaluates the newest
-- source of the database, whoever applied it.
CREATE FUNCTION dnr.applied_policy()
RETURNS TABLE (id bigint, source text, mode text, applied_at timestamptz, applied_by name)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT a.id, a.source, a.mode, a.applied_at, a.applied_by
  FROM pg_catalog.jsonb_to_recordset(dnr._registry('applied_policy', '{}'))
       AS a(id bigint, source text, mode text, applied_at timestamptz, applied_by name)
$$;

------------------------------------------------------------------------------
-- Migration history, shared with the `dnr migrate` command. A store is the
-- schema holding the migrated tables. Checksums are the lowercase hex
-- SHA-256 of the migration text's UTF-8 bytes:
-- encode(sha256(convert_to(ddl, 'UTF8')), 'hex').
------------------------------------------------------------------------------

-- Serializes migration runs per store, until the end of the transaction.
CREATE FUNCTION dnr.lock_migrations(store name) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT FROM dnr._registry('lock_migrations', pg_catalog.jsonb_build_object('store', $1))
$$;

CREATE FUNCTION dnr.migration_history(store name)
RETURNS TABLE (version integer, name text, checksum text, applied_at timestamptz, duration interval)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT h.version, h.name, h.checksum, h.applied_at, h.duration
  FROM pg_catalog.jsonb_to_recordset(dnr._registry('migration_history', pg_catalog.jsonb_build_object('store', $1)))
       AS h(version integer, name text, checksum text, applied_at timestamptz, duration interval)
 ORDER BY h.version
$$;

-- Records a migration of store; a second record of the same version is a
-- unique_violation.
CREATE FUNCTION dnr.record_migration(store name, version integer, name text, checksum text, duration interval)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT FROM dnr._registry('record_migration', pg_catalog.jsonb_build_object(
    'store', $1, 'version', $2, 'name', $3, 'checksum', $4, 'duration', $5))
$$;

-- Holds a tenant while it moves: until dnr.release_tenant, no role but the
-- holder (in maintenance) can set it as the context (a retryable error).
CREATE FUNCTION dnr.hold_tenant(id uuid) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT FROM dnr._registry('hold_tenant', pg_catalog.jsonb_build_object('tenant', $1))
$$;

-- Ends the caller's hold; true when there was one.
CREATE FUNCTION dnr.release_tenant(id uuid) RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT (dnr._registry('release_tenant', pg_catalog.jsonb_build_object('tenant', $1)) ->> 'released')::int > 0
$$;

------------------------------------------------------------------------------
-- Functions of 0.1.0 with new bodies.
------------------------------------------------------------------------------

-- The caller's tenant schemas, oldest tenant first.
CREATE OR REPLACE FUNCTION dnr._tenant_schemas() RETURNS name[]
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT COALESCE(pg_catalog.array_agg(t.schema_name ORDER BY t.created_at, t.id), '{}')
  FROM dnr.list_tenants() t
$$;

-- Removes every dnr_* policy from the caller's tables an earlier apply
-- managed and from the tables this source names, runs the compiled DDL
-- (once, or in each of the caller's tenant schemas), records the source.
-- Returns how many DNR policies are gone for good (stale). Runs in the
-- caller's transaction with the caller's privileges (only the records are
-- written through dnr._registry), so any error undoes all of it, and a
-- table the caller does not own is refused by PostgreSQL.
CREATE OR REPLACE FUNCTION dnr._apply(source text, ddl text, tables text[], mode text)
RETURNS integer LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
#variable_conflict use_column
DECLARE
    v_schemas name[];
    v_old regclass[];
    v_new regclass[];
    v_before text[];
    v_after text[];
    v_schema name;
    v_message text;
    v_state text;
    r record;
BEGIN
    -- NULL: the search_path decides where the tables are
    IF $4 = 'schema' THEN
        -- A tenant created concurrently either commits first (and is seen
        -- here) or waits for this apply (and gets its policy).
        SELECT COALESCE(pg_catalog.array_agg(x.value::name), '{}') INTO v_schemas
          FROM pg_catalog.jsonb_array_elements_text(dnr._registry('apply_schemas', '{}')) AS x(value);
    END IF;

    SELECT COALESCE(pg_catalog.array_agg(x.value::oid::regclass), '{}') INTO v_old
      FROM pg_catalog.jsonb_array_elements_text(dnr._registry('applied_tables', '{}')) AS x(value);

    v_new := dnr._existing_tables(v_schemas, $3);

    SELECT COALESCE(pg_catalog.array_agg(p.polrelid::text || '/' || p.polname), '{}') INTO v_before
      FROM pg_catalog.pg_policy p
     WHERE (p.polrelid = ANY (v_old) OR p.polrelid = ANY (v_new))
       AND pg_catalog.left(p.polname, 4) = 'dnr_';

    FOR r IN
        SELECT p.polname, p.polrelid::regclass AS tbl
          FROM pg_catalog.pg_policy p
         WHERE (p.polrelid = ANY (v_old) OR p.polrelid = ANY (v_new))
           AND pg_catalog.left(p.polname, 4) = 'dnr_'
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', r.polname, r.tbl);
    END LOOP;

    -- tables no longer in the source keep RLS enabled (fail closed) but lose
    -- DNR's trigger
    FOR r IN SELECT o.tbl FROM pg_catalog.unnest(v_old) AS o(tbl) WHERE o.tbl <> ALL (v_new) LOOP
        -- only when there is one: Citus refuses any trigger statement on a
        -- distributed table
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = r.tbl AND t.tgname = 'dnr_fill_tenant') THEN
            EXECUTE pg_catalog.format('DROP TRIGGER dnr_fill_tenant ON %s', r.tbl);
        END IF;
    END LOOP;

    IF v_schemas IS NULL THEN
        EXECUTE $2;
    ELSE
        FOREACH v_schema IN ARRAY v_schemas LOOP
            BEGIN
                PERFORM dnr._run_in_schema(v_schema, $2);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
                RAISE EXCEPTION 'in tenant schema %: %', v_schema, v_message USING ERRCODE = v_state;
            END;
        END LOOP;
    END IF;

    -- forget the caller's tables DNR applied before (and tables dropped
    -- since), record these and the source
    v_new := dnr._existing_tables(v_schemas, $3);
    PERFORM dnr._registry('record_apply', pg_catalog.jsonb_build_object(
        'source', $1, 'mode', $4, 'ddl', $2, 'tables', pg_catalog.to_jsonb($3),
        'rels', pg_catalog.to_jsonb(v_new::oid[])));

    SELECT COALESCE(pg_catalog.array_agg(p.polrelid::text || '/' || p.polname), '{}') INTO v_after
      FROM pg_catalog.pg_policy p
     WHERE pg_catalog.left(p.polname, 4) = 'dnr_';

    RETURN (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(v_before) b(k) WHERE b.k <> ALL (v_after));
END
$$;

CREATE OR REPLACE FUNCTION dnr.enable_tenant_isolation(tbl regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS text LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
#variable_conflict use_column
DECLARE
    v_attnum smallint;
    v_type regtype;
    v_fence text;
    r record;
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'dnr.enable_tenant_isolation: table and tenant column must not be NULL';
    END IF;
    SELECT a.attnum, a.atttypid::regtype INTO v_attnum, v_type
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no column %', $1, pg_catalog.quote_ident($2)
              USING ERRCODE = 'undefined_column';
    END IF;
    IF v_type <> 'pg_catalog.uuid'::regtype THEN
        RAISE EXCEPTION 'tenant column % of table % is %, expected uuid', pg_catalog.quote_ident($2), $1, v_type
              USING ERRCODE = 'datatype_mismatch';
    END IF;

    FOR r IN SELECT p.polname FROM pg_catalog.pg_policy p
              WHERE p.polrelid = $1 AND pg_catalog.left(p.polname, 4) = 'dnr_' LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', r.polname, $1);
    END LOOP;

    v_fence := pg_catalog.format('%I = (SELECT dnr.current_tenant())', $2);
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', $1);
    EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', $1);
    EXECUTE pg_catalog.format('CREATE POLICY dnr_fence ON %s AS RESTRICTIVE FOR ALL USING (%s) WITH CHECK (%s)', $1, v_fence, v_fence);
    EXECUTE pg_catalog.format('CREATE POLICY dnr_tenant_all ON %s FOR ALL USING (%s) WITH CHECK (%s)', $1, v_fence, v_fence);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS dnr_fill_tenant ON %s', $1);
    EXECUTE pg_catalog.format('CREATE TRIGGER dnr_fill_tenant BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION dnr.fill_tenant(%L)', $1, $2);
    -- an index whose first key is the tenant column, unless one exists
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indkey[0] = v_attnum) THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (%I)', $1, $2);
    END IF;

    PERFORM dnr._registry('record_isolation', pg_catalog.jsonb_build_object(
        'tbl', $1::oid, 'tenant_column', $2));

    RETURN pg_catalog.format('tenant isolation enabled on %s by column %I', $1, $2);
END
$$;

-- Creates the tenant's schema, owned by the caller (and, if the newest
-- policy the caller applied has tenancy mode schema, its tables and
-- policies). The DDL runs with the caller's privileges; the registry row
-- is written through dnr._registry.
CREATE OR REPLACE FUNCTION dnr.create_tenant(id uuid, name text)
RETURNS name LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_schema name;
    v_registered jsonb;
    v_applied jsonb;
    v_citus boolean;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'tenant id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_schema := 'tenant_' || pg_catalog.replace($1::text, '-', '');
    IF dnr._tenant_schema($1) IS NOT NULL THEN
        RAISE EXCEPTION 'tenant % exists', $1 USING ERRCODE = 'unique_violation';
    END IF;
    -- Citus with schema-based sharding turns only top-level CREATE TABLEs
    -- into tenant tables: the schema is created plain and distributed with
    -- its tables once they exist.
    v_citus := pg_catalog.current_setting('citus.enable_schema_based_sharding', true) = 'on'
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus');
    IF v_citus THEN
        PERFORM pg_catalog.set_config('citus.enable_schema_based_sharding', 'off', true);
    END IF;
    EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_schema);
    v_registered := dnr._registry('register_tenant', pg_catalog.jsonb_build_object('id', $1, 'name', $2));
    -- the newest policy the caller applied, compiled by DNR from its
    -- source, if its tables live in every tenant's schema
    IF v_registered ->> 'source' IS NOT NULL THEN
        v_applied := dnr._compile_applied(v_registered ->> 'source');
    END IF;
    IF v_applied ->> 'mode' = 'schema' THEN
        PERFORM dnr._run_in_schema(v_schema, v_applied ->> 'ddl');
        PERFORM dnr._registry('add_applied_tables', pg_catalog.jsonb_build_object('rels',
            pg_catalog.to_jsonb(dnr._existing_tables(ARRAY[v_schema],
                ARRAY(SELECT pg_catalog.jsonb_array_elements_text(v_applied -> 'tables')))::oid[])));
    END IF;
    IF v_citus THEN
        PERFORM pg_catalog.set_config('citus.enable_schema_based_sharding', 'on', true);
        BEGIN
            EXECUTE pg_catalog.format('SELECT pg_catalog.citus_schema_distribute(%L::regnamespace)', v_schema);
        EXCEPTION WHEN insufficient_privilege THEN
            -- Citus 13.2, distributing a schema created in the same
            -- transaction, re-creates its owner's role on every worker,
            -- which only a superuser may do: the schema stays on the
            -- coordinator (isolated all the same) until distributed in a
            -- later transaction (`dnr tenants create` does that).
            RAISE WARNING 'tenant schema % stays on the Citus coordinator: %', v_schema, SQLERRM
                USING HINT = pg_catalog.format('Distribute it in a new transaction (its owner may): SELECT citus_schema_distribute(%L)', v_schema);
        END;
    END IF;
    RETURN v_schema;
END
$$;

-- Runs ddl in each of the caller's tenant schemas (dnr.list_tenants), each
-- in its own subtransaction: one tenant's failure is reported in its row and
-- does not undo the others. Records nothing (see the versioned overload).
CREATE OR REPLACE FUNCTION dnr.migrate_tenants(ddl text)
RETURNS TABLE (tenant_id uuid, schema_name name, ok boolean, error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t record;
BEGIN
    FOR t IN SELECT r.id, r.schema_name AS nsp FROM dnr.list_tenants() r LOOP
        tenant_id := t.id;
        schema_name := t.nsp;
        BEGIN
            PERFORM pg_catalog.set_config('search_path', pg_catalog.format('%I', t.nsp), true);
            EXECUTE ddl;
            ok := true;
            error := NULL;
        EXCEPTION WHEN OTHERS THEN
            ok := false;
            error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Drops the tenant's schema (and everything in it) with the caller's
-- privileges; its records go through dnr._registry, which requires the
-- caller to own the schema.
CREATE OR REPLACE FUNCTION dnr.drop_tenant(id uuid)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_schema name;
BEGIN
    v_schema := dnr._registry('unregister_tenant', pg_catalog.jsonb_build_object('id', $1)) #>> '{}';
    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', v_schema);
END
$$;

CREATE OR REPLACE VIEW dnr.policies AS
SELECT c.oid::regclass AS tbl,
       n.nspname AS schema_name,
       c.relname AS table_name,
       p.polname AS policy_name,
       CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END AS kind,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced,
       m.managed_by
  FROM pg_catalog.pg_policy p
  JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN dnr.managed_tables m ON m.tbl = c.oid
 WHERE pg_catalog.left(p.polname, 4) = 'dnr_'
   AND (pg_catalog.pg_has_role(CURRENT_USER, c.relowner, 'MEMBER')
        OR pg_catalog.has_table_privilege(CURRENT_USER, 'dnr.managed_tables', 'SELECT'));

-- Every role sees the policies of the tables it owns (is a member of the
-- owner); superusers and the roles granted SELECT on dnr.managed_tables see
-- all. (PostgreSQL's own pg_policies shows the policies to everyone anyway.)
GRANT SELECT ON dnr.policies TO PUBLIC;

-- New in 0.2.0.

-- Versioned: applies migration `version` (`name`, text ddl) to each of the
-- caller's tenant schemas, each in its own subtransaction holding
-- dnr.lock_migrations(schema): skipped when the schema's history has the
-- version with the same checksum, refused (drift) when with another,
-- otherwise run and recorded atomically with its DDL (applied) or reported
-- (failed, the error).
CREATE FUNCTION dnr.migrate_tenants(version integer, name text, ddl text)
RETURNS TABLE (tenant_id uuid, schema_name name, status text, error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t record;
    v_version integer := $1;
    v_name text := $2;
    v_ddl text := $3;
    v_checksum text;
    v_recorded text;
    v_started timestamptz;
BEGIN
    IF v_version IS NULL OR v_name IS NULL OR v_ddl IS NULL THEN
        RAISE EXCEPTION 'dnr.migrate_tenants: version, name and ddl must not be NULL'
              USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_checksum := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(v_ddl, 'UTF8')), 'hex');
    FOR t IN SELECT r.id, r.schema_name AS nsp FROM dnr.list_tenants() r LOOP
        tenant_id := t.id;
        schema_name := t.nsp;
        error := NULL;
        BEGIN
            PERFORM dnr.lock_migrations(t.nsp);
            SELECT h.checksum INTO v_recorded
              FROM dnr.migration_history(t.nsp) h WHERE h.version = v_version;
            IF FOUND AND v_recorded = v_checksum THEN
                status := 'skipped';
            ELSIF FOUND THEN
                status := 'drift';
                error := pg_catalog.format('migration %s (%s): recorded checksum %s, file checksum %s',
                                           v_version, v_name, v_recorded, v_checksum);
            ELSE
                v_started := pg_catalog.clock_timestamp();
                PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(t.nsp), true);
                EXECUTE v_ddl;
                PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
                PERFORM dnr.record_migration(t.nsp, v_version, v_name, v_checksum,
                                             pg_catalog.clock_timestamp() - v_started);
                status := 'applied';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            status := 'failed';
            error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
