-- Append-only guards, sqlite flavour. Keep in step with the other backend's
-- 0008_append_only_guards.sql. Wallet movements -- every credit and debit of a seller's
-- wallet, the wallet's audit trail -- had no guard. (SQLite has no TRUNCATE: `DELETE FROM t`
-- without a WHERE runs the DELETE triggers, which disable its truncate optimization.)
CREATE TRIGGER wallet_movement_no_update BEFORE UPDATE ON wallet_movement
BEGIN SELECT RAISE(ABORT, 'wallet_movement is append-only'); END;
CREATE TRIGGER wallet_movement_no_delete BEFORE DELETE ON wallet_movement
BEGIN SELECT RAISE(ABORT, 'wallet_movement is append-only'); END;
