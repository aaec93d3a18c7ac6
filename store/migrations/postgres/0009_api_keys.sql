-- API keys, postgres flavour. Keep in step with the other backend's 0009_api_keys.sql.
--
-- The key itself is never stored: secret_hash is the hex SHA-256 of the whole key (keys are
-- 40 random base62 characters, so a fast hash is enough), unique, and the gateway finds a
-- caller's key by it. key_id is public (listed, logged, named in audit trails); lineage is the
-- key_id of the first key of a roll chain, and Idempotency-Keys are scoped to it, so a client
-- retrying across a roll finds its first answer. A key is active while revoked_at_ms is NULL
-- and expires_at_ms is NULL or in the future; a roll sets the old key's expires_at_ms and
-- rolled_to. scopes is a comma-separated, sorted set of 'admin' and 'payments'.
CREATE TABLE api_key (
    key_id        TEXT PRIMARY KEY,
    lineage       TEXT NOT NULL,
    secret_hash   TEXT NOT NULL UNIQUE CHECK (length(secret_hash) = 64),
    mode          TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    scopes        TEXT NOT NULL CHECK (scopes IN ('admin', 'payments', 'admin,payments')),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    suffix        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT,
    rolled_to     TEXT REFERENCES api_key (key_id)
);
CREATE INDEX api_key_lineage ON api_key (lineage);
