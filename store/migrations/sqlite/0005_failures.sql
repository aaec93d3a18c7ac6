-- Failure handling, sqlite flavour. Keep in step with the other backend's 0005_failures.sql.
--
-- 1. payment_order.status also allows 'REVERSED': captured, then given back to the buyer in full
--    by the saga's compensation. SQLite cannot alter a CHECK, so the table is rebuilt with
--    identical columns and constraints. payment_order_history and refund reference it (no other
--    table does; there are no triggers or extra indexes on it). `defer_foreign_keys` (reset at
--    commit) defers every foreign key check to the end of the migration's transaction: the DROP
--    orphans the child rows, and re-inserting their parents un-orphans them again, so the
--    commit sees no violation. Renaming instead would rewrite the children's REFERENCES to the
--    old name (SQLite always does with foreign keys on).
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE payment_order_0005 AS SELECT * FROM payment_order;
DROP TABLE payment_order;

CREATE TABLE payment_order (
    payment_order_id TEXT PRIMARY KEY,
    checkout_id      TEXT NOT NULL REFERENCES payment_event (checkout_id),
    position         INTEGER NOT NULL,
    seller_account   TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
    currency         TEXT NOT NULL CHECK (length(currency) = 3),
    status           TEXT NOT NULL
        CHECK (status IN ('NOT_STARTED', 'EXECUTING', 'SUCCESS', 'FAILED', 'UNKNOWN', 'REVERSED')),
    psp_reference    TEXT,
    failure_code     TEXT,
    failure_message  TEXT,
    wallet_updated   BOOLEAN NOT NULL DEFAULT FALSE,
    ledger_updated   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    UNIQUE (checkout_id, position)
);

INSERT INTO payment_order (payment_order_id, checkout_id, position, seller_account, amount_minor, currency,
    status, psp_reference, failure_code, failure_message, wallet_updated, ledger_updated, created_at_ms,
    updated_at_ms)
SELECT payment_order_id, checkout_id, position, seller_account, amount_minor, currency,
    status, psp_reference, failure_code, failure_message, wallet_updated, ledger_updated, created_at_ms,
    updated_at_ms
FROM temp.payment_order_0005;

DROP TABLE temp.payment_order_0005;

-- 2. A refund is either a customer's ('refund') or the saga's compensation of a capture it
--    could not book ('reversal', id "{payment_order_id}:reversal"); at most one reversal per
--    order.
ALTER TABLE refund ADD COLUMN kind TEXT NOT NULL DEFAULT 'refund' CHECK (kind IN ('refund', 'reversal'));
CREATE UNIQUE INDEX refund_one_reversal ON refund (payment_order_id) WHERE kind = 'reversal';

-- 3. Sellers an operator froze (KYC, fraud): a captured payment for them is not credited to
--    their wallet. One row per blocked seller; unblocking deletes it.
CREATE TABLE wallet_block (
    seller_account   TEXT PRIMARY KEY,
    reason           TEXT NOT NULL,
    blocked_at_ms    BIGINT NOT NULL
);

-- 4. Steps the saga gave up on, for an operator: OPEN (waiting), RETRYING (an operator asked
--    the workflow to try again), RESOLVED (retried successfully, or settled by hand).
--    resolved_by and resolution are set exactly when RESOLVED.
CREATE TABLE dead_letter (
    dead_letter_id   TEXT PRIMARY KEY,
    workflow_id      TEXT NOT NULL,
    checkout_id      TEXT,
    subject          TEXT NOT NULL,
    step             TEXT NOT NULL,
    reason           TEXT NOT NULL,
    last_error       TEXT NOT NULL,
    attempts         BIGINT NOT NULL CHECK (typeof(attempts) = 'integer' AND attempts >= 0),
    status           TEXT NOT NULL CHECK (status IN ('OPEN', 'RETRYING', 'RESOLVED')),
    resolved_by      TEXT,
    resolution       TEXT,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    CHECK ((status = 'RESOLVED') = (resolved_by IS NOT NULL AND resolution IS NOT NULL))
);
-- The operator's queue: by status, oldest first.
CREATE INDEX dead_letter_status ON dead_letter (status, created_at_ms);
