-- Failure handling, postgres flavour. Keep in step with the other backend's 0005_failures.sql.
--
-- 1. payment_order.status also allows 'REVERSED': captured, then given back to the buyer in full
--    by the saga's compensation. PostgreSQL alters the CHECK in place (0001 left it with the
--    generated name payment_order_status_check); adding it validates every existing row.
ALTER TABLE payment_order DROP CONSTRAINT payment_order_status_check;
ALTER TABLE payment_order ADD CONSTRAINT payment_order_status_check
    CHECK (status IN ('NOT_STARTED', 'EXECUTING', 'SUCCESS', 'FAILED', 'UNKNOWN', 'REVERSED'));

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
    attempts         BIGINT NOT NULL CHECK (attempts >= 0),
    status           TEXT NOT NULL CHECK (status IN ('OPEN', 'RETRYING', 'RESOLVED')),
    resolved_by      TEXT,
    resolution       TEXT,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    CHECK ((status = 'RESOLVED') = (resolved_by IS NOT NULL AND resolution IS NOT NULL))
);
-- The operator's queue: by status, oldest first.
CREATE INDEX dead_letter_status ON dead_letter (status, created_at_ms);
