-- Pay-in schema, PostgreSQL flavour. Keep in step with ../sqlite/0001_init.sql: both backends
-- must pass the same store tests.

CREATE TABLE payment_event (
    checkout_id      TEXT PRIMARY KEY,
    buyer_id         TEXT NOT NULL,
    buyer_info       TEXT NOT NULL,
    payment_token    TEXT NOT NULL,
    is_payment_done  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

CREATE TABLE payment_order (
    payment_order_id TEXT PRIMARY KEY,
    checkout_id      TEXT NOT NULL REFERENCES payment_event (checkout_id),
    position         INTEGER NOT NULL,
    seller_account   TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL CHECK (length(currency) = 3),
    status           TEXT NOT NULL
        CHECK (status IN ('NOT_STARTED', 'EXECUTING', 'SUCCESS', 'FAILED', 'UNKNOWN')),
    psp_reference    TEXT,
    failure_code     TEXT,
    failure_message  TEXT,
    wallet_updated   BOOLEAN NOT NULL DEFAULT FALSE,
    ledger_updated   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    UNIQUE (checkout_id, position)
);

CREATE TABLE payment_order_history (
    id               BIGSERIAL PRIMARY KEY,
    payment_order_id TEXT NOT NULL REFERENCES payment_order (payment_order_id),
    from_status      TEXT,
    to_status        TEXT NOT NULL,
    reason           TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL
);
CREATE INDEX payment_order_history_order ON payment_order_history (payment_order_id, id);

CREATE TABLE wallet (
    seller_account   TEXT NOT NULL,
    currency         TEXT NOT NULL CHECK (length(currency) = 3),
    balance_minor    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (seller_account, currency)
);

CREATE TABLE wallet_movement (
    idempotency_key  TEXT PRIMARY KEY,
    payment_order_id TEXT NOT NULL,
    seller_account   TEXT NOT NULL,
    currency         TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (amount_minor <> 0),
    created_at_ms    BIGINT NOT NULL
);

CREATE TABLE ledger_transaction (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    payment_order_id TEXT,
    created_at_ms    BIGINT NOT NULL
);

CREATE TABLE ledger_entry (
    id               BIGSERIAL PRIMARY KEY,
    transaction_id   TEXT NOT NULL
        REFERENCES ledger_transaction (id) DEFERRABLE INITIALLY DEFERRED,
    account          TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('DEBIT', 'CREDIT')),
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         TEXT NOT NULL CHECK (length(currency) = 3)
);
CREATE INDEX ledger_entry_transaction ON ledger_entry (transaction_id);
CREATE INDEX ledger_entry_account ON ledger_entry (account, currency);

CREATE FUNCTION reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER ledger_transaction_no_truncate BEFORE TRUNCATE ON ledger_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER payment_order_history_append_only BEFORE UPDATE OR DELETE ON payment_order_history
    FOR EACH ROW EXECUTE FUNCTION reject_change();

CREATE FUNCTION ledger_entry_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transaction WHERE id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger transaction is sealed';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_entry_sealed BEFORE INSERT ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_sealed();

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT COUNT(*) FROM ledger_entry WHERE transaction_id = NEW.id) < 2
       OR EXISTS (
           SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id
           GROUP BY currency
           HAVING SUM(CASE direction WHEN 'DEBIT' THEN amount_minor ELSE -amount_minor END) <> 0)
    THEN
        RAISE EXCEPTION 'ledger transaction does not balance';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_transaction_balanced BEFORE INSERT ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
