-- Balances that must not go negative, sqlite flavour. Keep in step with the other backend's
-- 0010_balance_checks.sql. SQLite cannot add a CHECK to an existing table: triggers refuse a
-- negative wallet balance on insert and update instead.
CREATE TRIGGER wallet_balance_not_negative_insert BEFORE INSERT ON wallet
WHEN NEW.balance_minor < 0
BEGIN SELECT RAISE(ABORT, 'wallet_balance_not_negative: a wallet balance cannot go below zero'); END;
CREATE TRIGGER wallet_balance_not_negative_update BEFORE UPDATE OF balance_minor ON wallet
WHEN NEW.balance_minor < 0
BEGIN SELECT RAISE(ABORT, 'wallet_balance_not_negative: a wallet balance cannot go below zero'); END;
