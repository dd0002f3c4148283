-- The same roles and databases as scripts/dev-postgres.sh.
CREATE ROLE dnr_owner LOGIN PASSWORD 'dnr_owner' CREATEDB NOSUPERUSER NOBYPASSRLS;
CREATE ROLE app LOGIN PASSWORD 'app' NOSUPERUSER NOBYPASSRLS NOCREATEDB;
CREATE DATABASE app OWNER dnr_owner;
CREATE DATABASE dnr_template OWNER dnr_owner IS_TEMPLATE true;
\c app
CREATE EXTENSION dnr;
\c dnr_template
CREATE EXTENSION dnr;
