-- Signed context (`dnr_set_context_signed`) on the SQLite extension: keys
-- installed by the host (`dnr_set_signing_keys`, refused once locked), the
-- token cases a forger tries, signed-only mode refusing the unsigned
-- setters, and a locked connection that takes context only from a token.
-- The keys below are test keys made with `dnr keygen` (k1 EdDSA, k2 HS256);
-- the valid tokens were minted with `dnr token --ttl 2000000000` (they
-- expire in 2090). Expiry, nbf, audience and algorithm confusion are in
-- dnr-sqlite/tests/host.rs, which mints tokens at run time.
.load ./target/release/libdnr
.bail off
.headers off
.nullvalue NULL
SELECT dnr_apply(readfile('tests/sqlite/tasks.dnr'));
.print '# no keys installed: refused'
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
.print '# the host installs two keys (rotation: both kids verify); a token sets the context for its transaction'
BEGIN;
SELECT dnr_set_signing_keys('k1:eddsa:CQXY9xBStrrORblEek_xoGAmSZuVP_h0bhVqTbnnVUM,k2:hs256:5d_4XukjU7ltQGL3zrcVnwDkIGtM54TJaBOoNJdXw04');
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin');
SELECT dnr_set_context_signed('eyJhbGciOiJIUzI1NiIsImtpZCI6ImsyIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NzAsImlhdCI6MTc5NTk5MDQ3MCwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYmJiYmJiYmItMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.HwxU5WUzfOpoRjcBjAlo70-cFSr--TO_-us8-KuEQsE');
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin');
.print '# forged tokens are refused and the context stays (tenant b)'
.print '# - the payload switched to tenant b, the signature kept'
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYmJiYmJiYmItMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
.print '# - alg none'
SELECT dnr_set_context_signed('eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.');
.print '# - an unknown kid'
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6Ims5IiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
.print '# - padded base64'
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0=.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
.print '# - not a token at all, and an oversized one'
SELECT dnr_set_context_signed('hello');
SELECT dnr_set_context_signed(printf('%.9000c', 'a'));
SELECT dnr_tenant(), dnr_user(), dnr_has_role('admin');
.print '# bad key text: a short HMAC secret (the secret is never echoed)'
SELECT dnr_set_signing_keys('k3:hs256:c2hvcnQ');
.print '# signed-only mode: the unsigned setters refuse, a token still works'
SELECT dnr_require_signed();
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000a11c', 'admin', 0);
SELECT dnr_set_tenant('aaaaaaaa-0000-0000-0000-000000000001', 0);
SELECT dnr_set_roles('admin', 0);
SELECT dnr_tenant(), dnr_has_role('admin');
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
SELECT dnr_tenant(), dnr_has_role('admin');
.print '# locked in signed-only mode: untrusted SQL becomes only what a token says'
SELECT dnr_lock();
SELECT dnr_set_context_signed('eyJhbGciOiJIUzI1NiIsImtpZCI6ImsyIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NzAsImlhdCI6MTc5NTk5MDQ3MCwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYmJiYmJiYmItMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.HwxU5WUzfOpoRjcBjAlo70-cFSr--TO_-us8-KuEQsE');
SELECT dnr_tenant();
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYmJiYmJiYmItMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
SELECT dnr_tenant();
SELECT dnr_set_signing_keys('k9:hs256:5d_4XukjU7ltQGL3zrcVnwDkIGtM54TJaBOoNJdXw04');
SELECT dnr_set_context('aaaaaaaa-0000-0000-0000-000000000001', NULL, NULL, 0);
SELECT dnr_tenant();
.print '# the context from a token ends with its transaction'
COMMIT;
SELECT dnr_tenant();
.print '# a locked connection not in signed-only mode takes no token'
.open :memory:
.load ./target/release/libdnr
SELECT dnr_set_signing_keys('k1:eddsa:CQXY9xBStrrORblEek_xoGAmSZuVP_h0bhVqTbnnVUM,k2:hs256:5d_4XukjU7ltQGL3zrcVnwDkIGtM54TJaBOoNJdXw04');
SELECT dnr_lock();
SELECT dnr_set_context_signed('eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjM3OTU5OTA0NjksImlhdCI6MTc5NTk5MDQ2OSwicm9sZXMiOlsiYWRtaW4iXSwic3ViIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDBhMTFjIiwidGlkIjoiYWFhYWFhYWEtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAxIn0.tS7IMtWTxBMQF29NqjXFOFNyZMa4Og5mnNmCrOCnn52BCC3B6NN7e6oTA3vTtjfWOmHf49FUdk0-7oA-PCVEDw');
SELECT dnr_tenant();
