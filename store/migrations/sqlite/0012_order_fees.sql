-- Fees recorded on orders, sqlite flavour. Keep in step with the other backend's
-- 0012_order_fees.sql.
--
-- The first booking of a captured order (its wallet credit or its ledger post, whichever runs
-- first) records on the order the moment of capture and the fee rate in force then, with the
-- fee it gives; every later booking of the order (the other step, refunds, the reversal)
-- reads them back instead of looking the rate up again. NULL: not booked yet (or captured
-- before fees existed).
ALTER TABLE payment_order ADD COLUMN captured_at_ms INTEGER;
ALTER TABLE payment_order ADD COLUMN fee_bps INTEGER CHECK (fee_bps BETWEEN 0 AND 10000);
ALTER TABLE payment_order ADD COLUMN fee_fixed_minor INTEGER CHECK (fee_fixed_minor >= 0);
ALTER TABLE payment_order ADD COLUMN fee_minor INTEGER
    CHECK (fee_minor IS NULL OR (fee_minor >= 0 AND fee_minor <= amount_minor));
-- SQLite cannot add a table constraint: the four columns are set together by one UPDATE.

-- With pay-outs a wallet can go below zero: a refund booked after the seller was paid out
-- is carried as a negative balance and netted against the next payout (issue 12). A payout
-- never takes a balance below zero: its debit carries the guard in the UPDATE itself.
DROP TRIGGER wallet_balance_not_negative_insert;
DROP TRIGGER wallet_balance_not_negative_update;
