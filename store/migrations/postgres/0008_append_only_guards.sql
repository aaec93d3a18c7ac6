-- Append-only guards, postgres flavour. Keep in step with the other backend's
-- 0008_append_only_guards.sql. The order history had no TRUNCATE guard here (UPDATE and DELETE
-- were refused, TRUNCATE emptied it), and wallet movements -- every credit and debit of a
-- seller's wallet, the wallet's audit trail -- had no guard at all. Corrections are new rows.
CREATE TRIGGER payment_order_history_no_truncate BEFORE TRUNCATE ON payment_order_history
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER wallet_movement_append_only BEFORE UPDATE OR DELETE ON wallet_movement
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER wallet_movement_no_truncate BEFORE TRUNCATE ON wallet_movement
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
