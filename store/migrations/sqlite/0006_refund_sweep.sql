-- The gateway's repair sweep looks for customer refunds still REQUESTED within a time window
-- (their workflow start may have been lost). Same on both backends.
CREATE INDEX refund_requested ON refund (status, created_at_ms);
