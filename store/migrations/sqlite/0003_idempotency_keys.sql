-- Stripe-style Idempotency-Key records of the REST API's mutating calls. Keys are global (one
-- namespace per API, like Stripe's per account); endpoint is `METHOD path` and request_hash the
-- hex SHA-256 of endpoint and raw body, so a key reused for another request is recognized.
-- A row is 'in_progress' while its first request runs and 'done' with the stored answer after.
-- Rows older than 24 h are treated as absent and purged by the gateway.
CREATE TABLE idempotency_key (
    key              TEXT PRIMARY KEY,
    endpoint         TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    response_status  INTEGER,
    response_body    TEXT,
    created_at_ms    BIGINT NOT NULL
);
-- The purge deletes by age.
CREATE INDEX idempotency_key_created ON idempotency_key (created_at_ms);
