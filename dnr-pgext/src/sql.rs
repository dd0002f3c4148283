//! The SQL half of the extension: tables, the fill trigger, `apply`'s
//! bookkeeping, tenant isolation without a policy file, the `dnr.policies`
//! view and schema-per-tenant helpers. The context readers and setters are
//! C functions (`context.rs`), created before this script's `finalize` part.
//!
//! Functions and types are schema-qualified so that a caller's `search_path`
//! cannot redirect them.

use pgrx::prelude::*;

extension_sql!(
    r#"
-- Everything lives in schema dnr (created by CREATE EXTENSION from the
-- control file). Ordinary roles may call the functions; the registries below
-- (and the dnr.policies view over them) are for the extension's owner and
-- the roles it grants them to. The functions application roles use read
-- what they need through SECURITY DEFINER functions that expose only that:
-- dnr.check/check_reason (the newest source, evaluated, never returned) and
-- dnr.use_tenant (a tenant's schema by its id).
GRANT USAGE ON SCHEMA dnr TO PUBLIC;

-- Every source dnr.apply() applied, newest last; dnr.check() uses the newest,
-- and dnr.create_tenant() runs the newest's DDL in a new tenant's schema when
-- its tenancy mode is schema.
CREATE TABLE dnr.applied (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    mode text NOT NULL DEFAULT 'row_level',
    ddl text NOT NULL DEFAULT '',
    tables text[] NOT NULL DEFAULT '{}',
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    applied_by name NOT NULL DEFAULT CURRENT_USER
);

-- Tables whose dnr_* policies DNR manages, and which function manages them.
CREATE TABLE dnr.managed_tables (
    tbl regclass PRIMARY KEY,
    tenant_column name,
    managed_by text NOT NULL CHECK (managed_by IN ('apply', 'isolation')),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- Schema-per-tenant registry.
CREATE TABLE dnr.tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    schema_name name NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- Not readable by PUBLIC: tenant ids and names, policy sources and their
-- authors are not the application's business. GRANT SELECT to a role that
-- administers DNR (docs/postgres.md).
REVOKE ALL ON dnr.applied, dnr.managed_tables, dnr.tenants FROM PUBLIC;

-- pg_dump keeps the registries' rows.
SELECT pg_catalog.pg_extension_config_dump('dnr.applied', '');
SELECT pg_catalog.pg_extension_config_dump('dnr.applied_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('dnr.managed_tables', '');
SELECT pg_catalog.pg_extension_config_dump('dnr.tenants', '');
"#,
    name = "dnr_bootstrap",
    bootstrap,
);

extension_sql!(
    r#"
------------------------------------------------------------------------------
-- BEFORE INSERT trigger: fills a NULL tenant column (named by the trigger's
-- argument) from the context. The fence still checks the result.
------------------------------------------------------------------------------

CREATE FUNCTION dnr.fill_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- Arguments: the tenant column ('' for none), then pairs of a defaulted
-- column and its default as text. On insert a NULL tenant column takes the
-- current tenant and a NULL defaulted column its default, so an explicit
-- NULL gets what an omitted value gets (as in SQLite and the evaluator).
DECLARE
    v_row jsonb;
    v_patch jsonb := '{}'::jsonb;
    i integer := 1;
BEGIN
    IF TG_NARGS < 1 OR TG_NARGS % 2 <> 1 THEN
        RAISE EXCEPTION 'dnr.fill_tenant() needs the tenant column name, then pairs of column and default';
    END IF;
    v_row := pg_catalog.to_jsonb(NEW);
    IF TG_ARGV[0] <> '' THEN
        IF NOT v_row ? TG_ARGV[0] THEN
            RAISE EXCEPTION 'dnr.fill_tenant(): table % has no column %', TG_RELID::regclass, pg_catalog.quote_ident(TG_ARGV[0]);
        END IF;
        IF v_row -> TG_ARGV[0] = 'null'::jsonb THEN
            v_patch := pg_catalog.jsonb_build_object(TG_ARGV[0], dnr.current_tenant());
        END IF;
    END IF;
    WHILE i + 1 < TG_NARGS LOOP
        IF v_row -> TG_ARGV[i] = 'null'::jsonb THEN
            v_patch := v_patch || pg_catalog.jsonb_build_object(TG_ARGV[i], TG_ARGV[i + 1]);
        END IF;
        i := i + 2;
    END LOOP;
    IF v_patch <> '{}'::jsonb THEN
        NEW := pg_catalog.jsonb_populate_record(NEW, v_patch);
    END IF;
    RETURN NEW;
END
$$;

------------------------------------------------------------------------------
-- dnr.apply()'s bookkeeping (called by the Rust function after dnr-core has
-- parsed and compiled the source). With tenancy mode schema the source's
-- tables live in every tenant's schema, otherwise where the search_path
-- finds them.
------------------------------------------------------------------------------

-- The tenant schemas, oldest tenant first.
CREATE FUNCTION dnr._tenant_schemas() RETURNS name[]
LANGUAGE sql STABLE AS $$
SELECT COALESCE(pg_catalog.array_agg(t.schema_name ORDER BY t.created_at, t.id), '{}')
  FROM dnr.tenants t
$$;

-- The existing tables among names: in each of schemas, or where the
-- search_path finds them when schemas is NULL.
CREATE FUNCTION dnr._existing_tables(schemas name[], names text[]) RETURNS regclass[]
LANGUAGE sql STABLE AS $$
SELECT COALESCE(pg_catalog.array_agg(DISTINCT x.rel), '{}')
  FROM pg_catalog.unnest($2) AS t(name),
       LATERAL (SELECT pg_catalog.quote_ident(t.name) AS qualified WHERE $1 IS NULL
                UNION ALL
                SELECT pg_catalog.quote_ident(s.nsp) || '.' || pg_catalog.quote_ident(t.name)
                  FROM pg_catalog.unnest($1) AS s(nsp)) q,
       LATERAL (SELECT pg_catalog.to_regclass(q.qualified) AS rel) x
 WHERE x.rel IS NOT NULL
$$;

-- Runs ddl with unqualified names resolving (and created) in schema only.
-- The SET clauses put the caller's search_path (and message level) back
-- when the function returns.
CREATE FUNCTION dnr._run_in_schema(schema name, ddl text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), true);
    EXECUTE $2;
END
$$;

-- Removes every dnr_* policy from tables an earlier apply managed and from
-- the tables this source names, runs the compiled DDL (once, or in every
-- tenant schema), records the source. Returns how many DNR policies are gone
-- for good (stale). Runs in the caller's transaction with the caller's
-- privileges, so any error undoes all of it.
CREATE FUNCTION dnr._apply(source text, ddl text, tables text[], mode text)
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
        LOCK TABLE dnr.tenants IN SHARE ROW EXCLUSIVE MODE;
        v_schemas := dnr._tenant_schemas();
    END IF;

    SELECT COALESCE(pg_catalog.array_agg(m.tbl), '{}') INTO v_old
      FROM dnr.managed_tables m
     WHERE m.managed_by = 'apply'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = m.tbl);

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
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS dnr_fill_tenant ON %s', r.tbl);
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

    -- forget tables DNR applied before, and tables that were dropped since
    DELETE FROM dnr.managed_tables m
     WHERE m.managed_by = 'apply'
        OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = m.tbl);
    v_new := dnr._existing_tables(v_schemas, $3);
    INSERT INTO dnr.managed_tables (tbl, managed_by)
    SELECT n.tbl, 'apply' FROM pg_catalog.unnest(v_new) AS n(tbl)
    ON CONFLICT (tbl) DO UPDATE
       SET tenant_column = NULL, managed_by = 'apply', updated_at = pg_catalog.clock_timestamp();
    INSERT INTO dnr.applied (source, mode, ddl, tables) VALUES ($1, $4, $2, $3);

    SELECT COALESCE(pg_catalog.array_agg(p.polrelid::text || '/' || p.polname), '{}') INTO v_after
      FROM pg_catalog.pg_policy p
     WHERE pg_catalog.left(p.polname, 4) = 'dnr_';

    RETURN (SELECT pg_catalog.count(*) FROM pg_catalog.unnest(v_before) b(k) WHERE b.k <> ALL (v_after));
END
$$;

------------------------------------------------------------------------------
-- The tenant fence alone, for a table without a policy file.
------------------------------------------------------------------------------

CREATE FUNCTION dnr.enable_tenant_isolation(tbl regclass, tenant_column name DEFAULT 'tenant_id')
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

    INSERT INTO dnr.managed_tables (tbl, tenant_column, managed_by) VALUES ($1, $2, 'isolation')
    ON CONFLICT (tbl) DO UPDATE
       SET tenant_column = EXCLUDED.tenant_column, managed_by = 'isolation', updated_at = pg_catalog.clock_timestamp();

    RETURN pg_catalog.format('tenant isolation enabled on %s by column %I', $1, $2);
END
$$;

------------------------------------------------------------------------------
-- The policies DNR manages.
------------------------------------------------------------------------------

CREATE VIEW dnr.policies AS
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
 WHERE pg_catalog.left(p.polname, 4) = 'dnr_';

-- Like the registries it reads, for the owner and the roles it grants it to
-- (PostgreSQL's own pg_policies shows the policies to everyone anyway).
REVOKE ALL ON dnr.policies FROM PUBLIC;

------------------------------------------------------------------------------
-- Schema per tenant
------------------------------------------------------------------------------

-- Creates the tenant's schema (and, if the newest policy has tenancy mode
-- schema, its tables and policies).
CREATE FUNCTION dnr.create_tenant(id uuid, name text)
RETURNS name LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_schema name;
    v_applied record;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'tenant id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_schema := 'tenant_' || pg_catalog.replace($1::text, '-', '');
    INSERT INTO dnr.tenants (id, name, schema_name) VALUES ($1, COALESCE($2, ''), v_schema);
    EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_schema);
    -- the newest policy, if its tables live in every tenant's schema
    SELECT a.mode, a.ddl, a.tables INTO v_applied FROM dnr.applied a ORDER BY a.id DESC LIMIT 1;
    IF FOUND AND v_applied.mode = 'schema' THEN
        PERFORM dnr._run_in_schema(v_schema, v_applied.ddl);
        INSERT INTO dnr.managed_tables (tbl, managed_by)
        SELECT n.tbl, 'apply' FROM pg_catalog.unnest(dnr._existing_tables(ARRAY[v_schema], v_applied.tables)) AS n(tbl)
        ON CONFLICT (tbl) DO NOTHING;
    END IF;
    RETURN v_schema;
END
$$;

-- The schema of the tenant with this id, NULL for an unknown id. SECURITY
-- DEFINER so that roles that may not read dnr.tenants can use_tenant; it
-- tells only what use_tenant tells (whether the id is a tenant; the schema
-- name follows from the id).
CREATE FUNCTION dnr._tenant_schema(id uuid) RETURNS name
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.schema_name FROM dnr.tenants t WHERE t.id = $1
$$;

-- Not SECURITY DEFINER and no SET clause: its SET LOCAL of search_path must
-- outlive the call. The tenant setting is written only when it changes, so
-- that with dnr.require_signed on, use_tenant of the tenant a signed token
-- set chooses its schema (and any other tenant is refused).
CREATE FUNCTION dnr.use_tenant(id uuid)
RETURNS name LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_schema name;
BEGIN
    v_schema := dnr._tenant_schema($1);
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'unknown tenant %', $1 USING ERRCODE = 'no_data_found';
    END IF;
    IF pg_catalog.current_setting('dnr.tenant_id', true) IS DISTINCT FROM $1::text THEN
        PERFORM pg_catalog.set_config('dnr.tenant_id', $1::text, true);
    END IF;
    PERFORM pg_catalog.set_config('search_path', pg_catalog.format('%I, public', v_schema), true);
    RETURN v_schema;
END
$$;

-- Runs ddl in every tenant's schema, each in its own subtransaction: one
-- tenant's failure is reported in its row and does not undo the others.
CREATE FUNCTION dnr.migrate_tenants(ddl text)
RETURNS TABLE (tenant_id uuid, schema_name name, ok boolean, error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t record;
BEGIN
    FOR t IN SELECT r.id, r.schema_name AS nsp FROM dnr.tenants r ORDER BY r.created_at, r.id LOOP
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

CREATE FUNCTION dnr.drop_tenant(id uuid)
RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_schema name;
BEGIN
    DELETE FROM dnr.tenants t WHERE t.id = $1 RETURNING t.schema_name INTO v_schema;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant %', $1 USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM dnr.managed_tables m
     USING pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = m.tbl AND n.nspname = v_schema;
    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', v_schema);
END
$$;
"#,
    name = "dnr_sql",
    finalize,
);
