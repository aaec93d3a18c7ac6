-- Refunds of captured payment orders, sqlite flavour. Keep in step with the other backend's
-- 0004_refunds.sql. refund_id is the business idempotency key (e.g.
-- "{payment_order_id}:refund:{n}") and the PSP's Idempotency-Key for the refund call.
-- REQUESTED and SUCCEEDED refunds count against the order's captured amount; FAILED ones free
-- it again. Completing a refund books its ledger reversal ("{refund_id}:ledger") and wallet
-- debit ("{refund_id}:wallet") in the same transaction as the status change.
CREATE TABLE refund (
    refund_id            TEXT PRIMARY KEY,
    payment_order_id     TEXT NOT NULL REFERENCES payment_order (payment_order_id),
    amount_minor         BIGINT NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    reason               TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('REQUESTED', 'SUCCEEDED', 'FAILED')),
    psp_refund_reference TEXT,
    failure_code         TEXT,
    created_at_ms        BIGINT NOT NULL,
    updated_at_ms        BIGINT NOT NULL
);
-- The refundable-amount sum and the per-order listing read by order.
CREATE INDEX refund_payment_order ON refund (payment_order_id, created_at_ms);
