-- Signed context: dnr.set_context_signed(token) verifies a token with the
-- keys a superuser configured and sets the transaction's context.
-- The test cluster's postgresql.conf holds the key set (ed1: Ed25519, hs1:
-- HMAC) and the audience dnr-test (tests/pg/fixtures/signed-keys.conf).
-- Tokens and keys are fixtures made by tests/pg/fixtures/signed_tokens.py
-- from fixed test keys: valid tokens expire on 2100-01-01, expired ones did
-- on 2001-01-01, so this output never changes.
-- Tenant A = 11111111-..., user a = aaaaaaaa-...; tenant B = 22222222-...
\set ECHO none
\i ../fixtures/signed-tokens.psql
\set ECHO all

-- The library in every new session of this database, and signed context
-- required there.
ALTER DATABASE :"DBNAME" SET session_preload_libraries = 'dnr';
ALTER DATABASE :"DBNAME" SET dnr.require_signed = on;

\c - dnr_owner
CREATE TABLE notes (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
INSERT INTO notes VALUES (1, :'tenant_a', 'a1'), (2, :'tenant_a', 'a2'), (3, :'tenant_b', 'b1');
SELECT dnr.enable_tenant_isolation('notes');
GRANT SELECT ON notes TO app;

-- try_token(token): set_context_signed's answer, with the time of day in
-- messages replaced by N; a refusal is caught (its subtransaction rolls
-- back), an accepted token's context stays.
CREATE FUNCTION try_token(token text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    PERFORM dnr.set_context_signed(token);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || regexp_replace(v_message, '\(now \d+,', '(now N,');
END
$$;
CREATE TABLE refused (ord int PRIMARY KEY, name text NOT NULL, token text);
INSERT INTO refused VALUES
    (1, 'bad signature (EdDSA, another key)', :'bad_signature'),
    (2, 'bad signature (HS256, another secret)', :'hs_bad_signature'),
    (3, 'expired', :'expired'),
    (4, 'not yet valid (nbf)', :'not_yet_valid'),
    (5, 'issued in the future (iat)', :'issued_in_future'),
    (6, 'no exp', :'no_exp'),
    (7, 'wrong audience', :'wrong_audience'),
    (8, 'no audience', :'no_audience'),
    (9, 'unknown kid', :'unknown_kid'),
    (10, 'alg none', :'alg_none'),
    (11, 'HS256 signed with the Ed25519 public key', :'alg_confusion'),
    (12, 'tampered payload (tid of B, signature of A)', :'tampered_payload'),
    (13, 'malformed base64 (padding)', :'malformed_padding'),
    (14, 'malformed base64 (+ and /)', :'malformed_alphabet'),
    (15, 'oversized (9000 bytes)', :'valid_a' || repeat('A', 9000 - length(:'valid_a'))),
    (16, 'header not JSON', 'bm90IGpzb24.' || split_part(:'valid_a', '.', 2) || '.' || split_part(:'valid_a', '.', 3)),
    (17, 'not a JWS', 'not-a-token'),
    (18, 'empty', ''),
    (19, 'tid not a uuid', :'tenant_not_uuid'),
    (20, 'roles as a string', :'roles_as_string'),
    (21, 'no kid with two keys configured', :'valid_no_kid'),
    (22, 'NULL', NULL);
SELECT ord, name, length(token) AS bytes FROM refused ORDER BY ord;
GRANT SELECT ON refused TO app;

-- The application role, in a new session: signed context is required.
\c - app
SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
SHOW dnr.require_signed;

-- A valid Ed25519 token sets tenant, user and roles for the transaction.
BEGIN;
SELECT dnr.set_context_signed(:'valid_a');
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), dnr.authenticated();
SELECT * FROM notes ORDER BY id;
COMMIT;
-- gone after the transaction
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
SELECT count(*) AS rows_without_context FROM notes;

-- A valid HS256 token.
BEGIN;
SELECT dnr.set_context_signed(:'valid_a_hs');
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
COMMIT;

-- The token's context replaces the whole context: a token without tid and
-- roles leaves no tenant and no roles.
BEGIN;
SELECT dnr.set_context_signed(:'valid_b');
SELECT dnr.current_tenant(), dnr.current_roles(), count(*) AS rows FROM notes;
SELECT dnr.set_context_signed(:'valid_no_tenant');
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), count(*) AS rows FROM notes;
COMMIT;

-- Rolled back with its transaction, and with a savepoint.
BEGIN;
SELECT dnr.set_context_signed(:'valid_a');
SAVEPOINT s;
SELECT dnr.set_context_signed(:'valid_b');
SELECT dnr.current_tenant() AS in_savepoint;
ROLLBACK TO s;
SELECT dnr.current_tenant() AS after_rollback_to_savepoint;
ROLLBACK;
SELECT dnr.current_tenant() AS after_rollback;

-- Outside a transaction block it lasts for its statement (or round trip).
SELECT dnr.set_context_signed(:'valid_b') \; SELECT dnr.current_tenant() AS same_round_trip, count(*) AS rows FROM notes;
SELECT dnr.current_tenant() AS next_statement;

-- A repeated token is verified once per backend and then found in the
-- cache, until it expires.
BEGIN;
SELECT count(*) AS calls FROM (SELECT dnr.set_context_signed(:'valid_a') FROM generate_series(1, 2000)) s;
SELECT dnr.current_tenant();
COMMIT;

-- Refused tokens: each is an error (SQLSTATE 28000,
-- invalid_authorization_specification), and the context stays what it
-- was (tenant A, user a, staff).
BEGIN;
SELECT dnr.set_context_signed(:'valid_a');
SELECT r.ord, r.name, try_token(r.token) AS answer FROM refused r ORDER BY r.ord;
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles(), count(*) AS rows FROM notes;
COMMIT;

-- The same errors as psql shows them; no error repeats the token.
BEGIN;
SELECT dnr.set_context_signed(:'valid_a');
SAVEPOINT s;
SELECT dnr.set_context_signed(:'bad_signature');
ROLLBACK TO s;
SELECT dnr.set_context_signed(:'alg_none');
ROLLBACK TO s;
SELECT dnr.set_context_signed(:'alg_confusion');
ROLLBACK TO s;
SELECT dnr.set_context_signed(:'tampered_payload');
ROLLBACK TO s;
SELECT dnr.set_context_signed(NULL);
ROLLBACK TO s;
SELECT dnr.current_tenant() AS unchanged, count(*) AS rows FROM notes;
COMMIT;

-- The application role cannot change the keys or the options.
SET dnr.signing_keys = 'mine:hs256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
SELECT set_config('dnr.token_audience', '', false);
SET dnr.token_leeway = 3600;
SET dnr.token_tenant_claim = 'sub';
RESET dnr.token_issuer;

-- Options, as a superuser sets them (here for the session; SET ROLE app
-- then acts as the application).
\c - postgres
SHOW dnr.token_audience;
SHOW dnr.token_issuer;
SHOW dnr.token_leeway;
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'dnr.token%' ORDER BY name;

-- An issuer: tokens must name it.
SET dnr.token_issuer = 'https://issuer.test';
SET ROLE app;
SELECT try_token(:'valid_a') AS without_iss, try_token(:'valid_a_issuer') AS with_iss;
RESET ROLE;
RESET dnr.token_issuer;

-- No audience: the claim is not checked. A token verified (and cached)
-- then is refused once the audience is required again: the cache holds a
-- verification only for the options that made it.
SET dnr.token_audience = '';
SET ROLE app;
SELECT try_token(:'no_audience') AS no_audience_not_required;
RESET ROLE;
RESET dnr.token_audience;
SET ROLE app;
SELECT try_token(:'no_audience') AS no_audience_required_again;
RESET ROLE;

-- Claim names: the context from other claims.
SET dnr.token_tenant_claim = 'org';
SET dnr.token_user_claim = 'uid';
SET dnr.token_roles_claim = 'perms';
SET ROLE app;
BEGIN;
SELECT dnr.set_context_signed(:'valid_custom_claims');
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
-- a token with the default claims now has no context in it
SELECT dnr.set_context_signed(:'valid_a');
SELECT dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles();
COMMIT;
RESET ROLE;
SET dnr.token_tenant_claim = '';
RESET dnr.token_tenant_claim;
RESET dnr.token_user_claim;
RESET dnr.token_roles_claim;
SET dnr.token_leeway = 7200;
SET dnr.token_leeway = '1min';
SHOW dnr.token_leeway;
RESET dnr.token_leeway;

-- Key rotation with two kids. Before: ed2 is unknown.
SET ROLE app;
SELECT try_token(:'valid_a') AS ed1, try_token(:'valid_a_ed2') AS ed2;
RESET ROLE;
-- during: both verify
SET dnr.signing_keys = :'keys_rotation';
SET ROLE app;
SELECT try_token(:'valid_a') AS ed1, try_token(:'valid_a_ed2') AS ed2, try_token(:'valid_b_ed2') AS ed2_tenant_b;
BEGIN;
SELECT dnr.set_context_signed(:'valid_b_ed2');
SELECT dnr.current_tenant(), count(*) AS rows FROM notes;
COMMIT;
RESET ROLE;
-- after: ed1 is gone, also for its token verified (and cached) just before
SET dnr.signing_keys = :'keys_new';
SET ROLE app;
SELECT try_token(:'valid_a') AS ed1, try_token(:'valid_a_ed2') AS ed2;
RESET ROLE;
-- a single key needs no kid
SET dnr.signing_keys = :'keys_ed1_only';
SET ROLE app;
SELECT try_token(:'valid_no_kid') AS no_kid_single_key, try_token(:'valid_a_hs') AS hs1_removed;
RESET ROLE;
-- no keys: every token is refused
SET dnr.signing_keys = '';
SET ROLE app;
SELECT dnr.set_context_signed(:'valid_a');
RESET ROLE;
RESET dnr.signing_keys;
SET ROLE app;
SELECT try_token(:'valid_a') AS configured_keys_again;
RESET ROLE;

-- Invalid key text is refused when it is set; the errors name the entry or
-- the kid, never the key material.
SET dnr.signing_keys = 'k1:hs256:c2hvcnQtc2VjcmV0';
SET dnr.signing_keys = 'k1:eddsa-private:9a8rn4lq2mYTZhSibuJWKmAu0z_y9C6RxH4emNofoNY';
SET dnr.signing_keys = 'k1:eddsa:not+base64/';
SET dnr.signing_keys = 'k1:rsa:AAAA';
SET dnr.signing_keys = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA';
