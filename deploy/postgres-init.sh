#!/usr/bin/env bash
# First-start initialisation of the PostgreSQL server in docker-compose.yml.
#
# The official postgres image runs every script in /docker-entrypoint-initdb.d
# once, when the data volume is empty. This one creates:
#   - role `temporal`  owning `temporal` and `temporal_visibility` (Temporal server)
#   - role `payments`  owning `payments` (our application: worker, gateway)
# Passwords come from the environment (TEMPORAL_DB_PASSWORD, PAYMENTS_DB_PASSWORD);
# role and database names are fixed because the connection settings in
# docker-compose.yml name them.
set -euo pipefail

: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}"
: "${PAYMENTS_DB_PASSWORD:?PAYMENTS_DB_PASSWORD must be set}"

psql_admin() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" "$@"
}

# psql variables (:'name') quote the passwords as SQL literals.
psql_admin --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v payments_password="$PAYMENTS_DB_PASSWORD" <<'EOSQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

CREATE ROLE payments LOGIN PASSWORD :'payments_password';
CREATE DATABASE payments OWNER payments;
EOSQL

# Temporal's PostgreSQL visibility schema needs btree_gin; create it as the
# superuser so the schema tool (running as `temporal`) finds it present.
psql_admin --dbname temporal_visibility <<'EOSQL'
CREATE EXTENSION IF NOT EXISTS btree_gin;
EOSQL

# Our own schema is owned by the application role; it runs its migrations itself.
psql_admin --dbname payments <<'EOSQL'
ALTER SCHEMA public OWNER TO payments;
EOSQL
