-- Money safety, sqlite flavour. Keep in step with the other backend's 0007_money_safety.sql.
--
-- workflow_started_at_ms: set once the row's workflow is known to exist (the gateway started
-- it, or found it started). Rows stored but never started (the gateway died between its commit
-- and the start, or Temporal was unreachable) are exactly those with NULL: the gateway's start
-- sweep walks them in bounded batches, oldest first, with no age window, and starts each one.
-- client_key: the Idempotency-Key of the request that created the row, unique, so a client's
-- retry with the same key finds what its first attempt created, whatever became of the first
-- answer (a 5xx, a dropped connection, a claim taken over after it went stale).
ALTER TABLE payment_event ADD COLUMN workflow_started_at_ms BIGINT;
ALTER TABLE payment_event ADD COLUMN client_key TEXT;
CREATE UNIQUE INDEX payment_event_client_key ON payment_event (client_key);
CREATE INDEX payment_event_unstarted ON payment_event (created_at_ms, checkout_id)
    WHERE workflow_started_at_ms IS NULL;
-- Rows written before this migration: a done checkout needs no workflow; the others are left
-- to the sweep, which asks Temporal (an existing workflow answers "already started").
UPDATE payment_event SET workflow_started_at_ms = updated_at_ms WHERE is_payment_done = TRUE;

ALTER TABLE refund ADD COLUMN workflow_started_at_ms BIGINT;
ALTER TABLE refund ADD COLUMN client_key TEXT;
CREATE UNIQUE INDEX refund_client_key ON refund (client_key);
CREATE INDEX refund_unstarted ON refund (created_at_ms, refund_id) WHERE workflow_started_at_ms IS NULL;
-- A finished refund needs no start; a reversal runs inside its checkout's workflow.
UPDATE refund SET workflow_started_at_ms = updated_at_ms WHERE status <> 'REQUESTED' OR kind = 'reversal';
-- Replaced by refund_unstarted: the old sweep's one-hour window is gone.
DROP INDEX refund_requested;
