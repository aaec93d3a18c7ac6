#!/usr/bin/env bash
# First-start initialisation of the PostgreSQL server in docker-compose.yml.
#
# The official postgres image runs every script in /docker-entrypoint-initdb.d
# once, when the data volume is empty. This one creates:
#   - role `temporal`  owning `temporal` and `temporal_visibility` (Temporal server)
#   - role `payments_owner` owning `payments` and its schema (migrations only:
#     `paymentsctl db migrate --grant-to payments`, the compose one-shot `migrate`)
#   - role `payments` the worker and gateway connect as: granted rows only, so it
#     cannot alter, drop, disable the triggers of, or TRUNCATE the ledger and history
# Passwords come from the environment (TEMPORAL_DB_PASSWORD, PAYMENTS_OWNER_DB_PASSWORD,
# PAYMENTS_DB_PASSWORD);
# role and database names are fixed because the connection settings in
# docker-compose.yml name them.
set -euo pipefail

: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}"
: "${PAYMENTS_DB_PASSWORD:?PAYMENTS_DB_PASSWORD must be set}"
: "${PAYMENTS_OWNER_DB_PASSWORD:?PAYMENTS_OWNER_DB_PASSWORD must be set}"

psql_admin() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" "$@"
}

# psql variables (:'name') quote the passwords as SQL literals.
psql_admin --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v payments_password="$PAYMENTS_DB_PASSWORD" \
    -v owner_password="$PAYMENTS_OWNER_DB_PASSWORD" <<'EOSQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

CREATE ROLE payments_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE payments LOGIN PASSWORD :'payments_password';
CREATE DATABASE payments OWNER payments_owner;
EOSQL

# Temporal's PostgreSQL visibility schema needs btree_gin; create it as the
# superuser so the schema tool (running as `temporal`) finds it present.
psql_admin --dbname temporal_visibility <<'EOSQL'
CREATE EXTENSION IF NOT EXISTS btree_gin;
EOSQL

# Our schema belongs to the owner role; the service role may only use it (no CREATE).
psql_admin --dbname payments <<'EOSQL'
ALTER SCHEMA public OWNER TO payments_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO payments;
EOSQL
