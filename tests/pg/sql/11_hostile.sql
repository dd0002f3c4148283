-- Hostile policy sources never take the server down. Each goes through
-- dnr.compile, dnr.apply and dnr.check as the application role app and is
-- an error; the server keeps every other connection, which a second
-- connection (dblink, opened before the hostile calls) shows by answering
-- afterwards from the same backend.
CREATE EXTENSION dblink;
SELECT dblink_connect_u('other', pg_catalog.format('host=%s port=%s dbname=%s user=app', :'HOST', :'PORT', :'DBNAME'));
SELECT pid AS other_pid FROM dblink('other', 'SELECT pg_backend_pid()') AS t(pid integer) \gset
SELECT pg_backend_pid() AS my_pid, pg_postmaster_start_time() AS started \gset

-- The sources, built in SQL.
CREATE TABLE hostile (name text PRIMARY KEY, source text NOT NULL);
INSERT INTO hostile VALUES
    ('10000 nested parentheses',
     E'entity T:\n  access:\n    read: ' || repeat('(', 10000) || 'true' || repeat(')', 10000) || E'\n'),
    ('50000 chained nots',
     E'entity T:\n  access:\n    read: ' || repeat('not ', 50000) || E'true\n'),
    ('100000-term or chain',
     E'entity T:\n  access:\n    read: ' || (SELECT string_agg('true', ' or ') FROM generate_series(1, 100000)) || E'\n'),
    ('table names equal in their first 63 bytes',
     E'entity Public:\n  table: ' || repeat('a', 63) || E'_public\n  id: int pk\n  access:\n    read: true\n\n'
     || E'entity Secret:\n  table: ' || repeat('a', 63) || E'_secret\n  id: int pk\n  access:\n    read: role(admin)\n'),
    ('2 MiB source',
     E'entity T:\n  access:\n    read: true\n' || repeat(E'\n', 2 * 1024 * 1024));
SELECT name, length(source) AS bytes FROM hostile ORDER BY name;
GRANT SELECT ON hostile TO app;

-- Runs call (with source as $1) and returns the error it raises: SQLSTATE
-- and the message's first 200 characters (the DETAIL of a policy error
-- quotes the offending line, here up to 800 kB long), or 'no error'.
CREATE FUNCTION attempt(call text, source text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    EXECUTE call USING source;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || pg_catalog.left(v_message, 200);
END
$$;

-- compile and apply, as app
SET ROLE app;
SELECT name, attempt('SELECT dnr.compile($1)', source) AS compile FROM hostile ORDER BY name;
SELECT name, attempt('SELECT dnr.apply($1)', source) AS apply FROM hostile ORDER BY name;
-- the colliding names straight from psql: both spans in the DETAIL
SELECT dnr.compile(source) FROM hostile WHERE name = 'table names equal in their first 63 bytes';
RESET ROLE;

-- check reads the newest applied source, which apply refuses to record: a
-- hostile one can only come from elsewhere (written by a superuser, or by
-- an older version of DNR). With each in turn the newest, check and
-- check_reason are errors.
CREATE FUNCTION check_each() RETURNS TABLE (name text, "check" text, check_reason text)
LANGUAGE plpgsql AS $$
DECLARE
    h record;
BEGIN
    FOR h IN SELECT * FROM hostile ORDER BY hostile.name LOOP
        RESET ROLE;
        INSERT INTO dnr.applied (source) VALUES (h.source);
        SET ROLE app;
        name := h.name;
        "check" := attempt($q$SELECT dnr.check('T', 'read', '{}')$q$);
        check_reason := attempt($q$SELECT dnr.check_reason('Secret', 'read', '{"id": 1}')$q$);
        RETURN NEXT;
    END LOOP;
    RESET ROLE;
END
$$;
SELECT * FROM check_each();
-- a record nested deeper than the JSON reader allows is an error too
SELECT dnr.apply(E'entity T:\n  table: t\n  id: int pk\n  access:\n    read: true\n');
SET ROLE app;
SELECT attempt(pg_catalog.format('SELECT dnr.check(%L, %L, %L)', 'T', 'read', '{"id": ' || repeat('[', 5000) || repeat(']', 5000) || '}')) AS deep_record;
RESET ROLE;

-- Nothing was created but t, and the server kept every connection: this
-- one and the other one, each still served by the same backend process.
SELECT relname FROM pg_class WHERE relname LIKE 'aaaa%' OR relname = 't';
SELECT pid = :other_pid AS other_same_backend, usr AS other_user
  FROM dblink('other', 'SELECT pg_backend_pid(), current_user::text') AS t(pid integer, usr text);
SELECT pg_backend_pid() = :my_pid AS same_backend,
       pg_postmaster_start_time() = :'started' AS same_postmaster;
SELECT dblink_disconnect('other');
