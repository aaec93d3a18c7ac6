-- Pay-in schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql: both backends
-- must pass the same store tests.

-- One checkout (the seeds' payment event).
CREATE TABLE payment_event (
    checkout_id      TEXT PRIMARY KEY,
    buyer_id         TEXT NOT NULL,
    buyer_info       TEXT NOT NULL,
    payment_token    TEXT NOT NULL,
    is_payment_done  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

-- One seller's share of a checkout. payment_order_id is the PSP idempotency key, so it is
-- unique across all checkouts.
CREATE TABLE payment_order (
    payment_order_id TEXT PRIMARY KEY,
    checkout_id      TEXT NOT NULL REFERENCES payment_event (checkout_id),
    position         INTEGER NOT NULL,
    seller_account   TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
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

-- Append-only history of every status transition.
CREATE TABLE payment_order_history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_order_id TEXT NOT NULL REFERENCES payment_order (payment_order_id),
    from_status      TEXT,
    to_status        TEXT NOT NULL,
    reason           TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL
);
CREATE INDEX payment_order_history_order ON payment_order_history (payment_order_id, id);

-- Seller balances, per seller and currency. The ledger is the truth; this is its fast
-- projection, kept equal to it (`paymentsctl verify`).
CREATE TABLE wallet (
    seller_account   TEXT NOT NULL,
    currency         TEXT NOT NULL CHECK (length(currency) = 3),
    -- SQLite turns an overflowing integer sum into a REAL: refuse that instead.
    balance_minor    BIGINT NOT NULL CHECK (typeof(balance_minor) = 'integer'),
    updated_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (seller_account, currency)
);

-- One row per applied wallet movement; the key makes a credit happen at most once.
CREATE TABLE wallet_movement (
    idempotency_key  TEXT PRIMARY KEY,
    payment_order_id TEXT NOT NULL,
    seller_account   TEXT NOT NULL,
    currency         TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor <> 0),
    created_at_ms    BIGINT NOT NULL
);

-- Double-entry ledger. A transaction is written after its entries ("sealed"): the insert is
-- refused unless the entries balance per currency, and no entry may join a sealed
-- transaction. The deferred foreign key makes an entry without its transaction fail at commit.
CREATE TABLE ledger_transaction (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    payment_order_id TEXT,
    created_at_ms    BIGINT NOT NULL
);

CREATE TABLE ledger_entry (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id   TEXT NOT NULL
        REFERENCES ledger_transaction (id) DEFERRABLE INITIALLY DEFERRED,
    account          TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('DEBIT', 'CREDIT')),
    amount_minor     BIGINT NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
    currency         TEXT NOT NULL CHECK (length(currency) = 3)
);
CREATE INDEX ledger_entry_transaction ON ledger_entry (transaction_id);
CREATE INDEX ledger_entry_account ON ledger_entry (account, currency);

CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry
BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only'); END;
CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry
BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only'); END;
CREATE TRIGGER ledger_transaction_no_update BEFORE UPDATE ON ledger_transaction
BEGIN SELECT RAISE(ABORT, 'ledger_transaction is append-only'); END;
CREATE TRIGGER ledger_transaction_no_delete BEFORE DELETE ON ledger_transaction
BEGIN SELECT RAISE(ABORT, 'ledger_transaction is append-only'); END;
CREATE TRIGGER payment_order_history_no_update BEFORE UPDATE ON payment_order_history
BEGIN SELECT RAISE(ABORT, 'payment_order_history is append-only'); END;
CREATE TRIGGER payment_order_history_no_delete BEFORE DELETE ON payment_order_history
BEGIN SELECT RAISE(ABORT, 'payment_order_history is append-only'); END;

CREATE TRIGGER ledger_entry_sealed BEFORE INSERT ON ledger_entry
WHEN EXISTS (SELECT 1 FROM ledger_transaction WHERE id = NEW.transaction_id)
BEGIN SELECT RAISE(ABORT, 'ledger transaction is sealed'); END;

CREATE TRIGGER ledger_transaction_balanced BEFORE INSERT ON ledger_transaction
WHEN (SELECT COUNT(*) FROM ledger_entry WHERE transaction_id = NEW.id) < 2
  OR EXISTS (
    SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id
    GROUP BY currency
    HAVING SUM(CASE direction WHEN 'DEBIT' THEN amount_minor ELSE -amount_minor END) <> 0)
BEGIN SELECT RAISE(ABORT, 'ledger transaction does not balance'); END;
