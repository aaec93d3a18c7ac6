-- Fees recorded on orders, postgres flavour. Keep in step with the other backend's
-- 0012_order_fees.sql.
--
-- The first booking of a captured order (its wallet credit or its ledger post, whichever runs
-- first) records on the order the moment of capture and the fee rate in force then, with the
-- fee it gives; every later booking of the order (the other step, refunds, the reversal)
-- reads them back instead of looking the rate up again. NULL: not booked yet (or captured
-- before fees existed).
ALTER TABLE payment_order ADD COLUMN captured_at_ms BIGINT;
ALTER TABLE payment_order ADD COLUMN fee_bps INTEGER CHECK (fee_bps BETWEEN 0 AND 10000);
ALTER TABLE payment_order ADD COLUMN fee_fixed_minor BIGINT CHECK (fee_fixed_minor >= 0);
ALTER TABLE payment_order ADD COLUMN fee_minor BIGINT;
ALTER TABLE payment_order ADD CONSTRAINT payment_order_fee_within_amount
    CHECK (fee_minor IS NULL OR (fee_minor >= 0 AND fee_minor <= amount_minor));
ALTER TABLE payment_order ADD CONSTRAINT payment_order_fee_complete
    CHECK ((fee_minor IS NULL) = (fee_bps IS NULL) AND (fee_minor IS NULL) = (fee_fixed_minor IS NULL)
           AND (fee_minor IS NULL) = (captured_at_ms IS NULL));

-- With pay-outs a wallet can go below zero: a refund booked after the seller was paid out
-- is carried as a negative balance and netted against the next payout (issue 12). A payout
-- never takes a balance below zero: its debit carries the guard in the UPDATE itself.
ALTER TABLE wallet DROP CONSTRAINT wallet_balance_not_negative;
