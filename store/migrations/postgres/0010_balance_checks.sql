-- Balances that must not go negative, postgres flavour. Keep in step with the other backend's
-- 0010_balance_checks.sql. A wallet is debited only by refunds and reversals of what it was
-- credited, under the order's lock and a guard in the UPDATE itself; the database refuses a
-- negative balance all the same, whatever writes it.
ALTER TABLE wallet ADD CONSTRAINT wallet_balance_not_negative CHECK (balance_minor >= 0);
