-- Reconciliation (issue 13), postgres flavour. Keep in step with the other backend's 0015_reconciliation.sql.

-- Settlement reports as received. A report is stored once per PSP and content (UNIQUE sha256):
-- importing the same file or the same API day again changes nothing. source: 'csv' (a file
-- given to `paymentsctl recon import`), 'toss_api' (GET /v1/settlements), 'stripe_api'
-- (GET /v1/balance_transactions); day: the settlement day it was fetched for, if any.
CREATE TABLE recon_file (
    file_id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    psp            TEXT NOT NULL CHECK (psp IN ('stripe', 'toss')),
    source         TEXT NOT NULL CHECK (source IN ('csv', 'toss_api', 'stripe_api')),
    name           TEXT NOT NULL,
    day            TEXT,
    sha256         TEXT NOT NULL,
    line_count     BIGINT NOT NULL CHECK (line_count >= 0),
    imported_at_ms BIGINT NOT NULL,
    UNIQUE (psp, sha256)
);

-- Every line of every report, parsed, with its raw text; never changed. A movement the PSP
-- reports more than once (the same transaction id: a duplicated line, or a later report of the
-- same day) is stored each time; every copy after the first points at the first (duplicate_of),
-- and only first copies are matched: the partial UNIQUE index keeps one per movement.
CREATE TABLE recon_line (
    line_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_id           BIGINT NOT NULL REFERENCES recon_file (file_id),
    line_no           BIGINT NOT NULL CHECK (line_no > 0),
    psp               TEXT NOT NULL,
    kind              TEXT NOT NULL,
    transaction_id    TEXT NOT NULL,
    payment_reference TEXT,
    order_id          TEXT,
    refund_reference  TEXT,
    amount_minor      BIGINT NOT NULL,
    fee_minor         BIGINT NOT NULL,
    net_minor         BIGINT NOT NULL,
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    sold_date         TEXT NOT NULL CHECK (length(sold_date) = 10),
    paid_out_date     TEXT,
    raw               TEXT NOT NULL,
    duplicate_of      BIGINT REFERENCES recon_line (line_id),
    UNIQUE (file_id, line_no),
    CHECK (net_minor = amount_minor - fee_minor)
);
CREATE UNIQUE INDEX recon_line_movement ON recon_line (psp, transaction_id) WHERE duplicate_of IS NULL;
CREATE INDEX recon_line_day ON recon_line (psp, sold_date, payment_reference);
CREATE INDEX recon_line_payment ON recon_line (psp, payment_reference);
CREATE INDEX recon_line_order ON recon_line (psp, order_id);

-- One reconciliation of one PSP's day (run id recon-{psp}-{day}); running it again updates
-- the row: attempts counts the runs, report is the last run's JSON report.
CREATE TABLE recon_run (
    run_id         TEXT PRIMARY KEY,
    psp            TEXT NOT NULL CHECK (psp IN ('stripe', 'toss')),
    day            TEXT NOT NULL CHECK (length(day) = 10),
    status         TEXT NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
    attempts       BIGINT NOT NULL CHECK (attempts > 0),
    report         TEXT,
    error          TEXT,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT,
    UNIQUE (psp, day)
);

-- A break: one per fingerprint ({psp}:{kind}:{subject}), whatever number of runs sees it.
-- OPEN: waiting (class 1: for the program, class 2: finance's work queue, class 3: the priority
-- queue); HEALING: a class-1 fix or an approved fix was sent through the workflows (a later run
-- still finding it opens it again); HEALED: a
-- later run no longer found it, or the program fixed it; RESOLVED: an operator closed it with
-- a note; ACCEPTED: an operator accepted it until accepted_until_ms (then it opens again if a
-- run still finds it). A run that finds a HEALED or RESOLVED break again reopens it (reopened
-- counts how often).
CREATE TABLE recon_break (
    break_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint       TEXT NOT NULL UNIQUE,
    psp               TEXT NOT NULL CHECK (psp IN ('stripe', 'toss')),
    day               TEXT NOT NULL CHECK (length(day) = 10),
    last_seen_day     TEXT NOT NULL CHECK (length(last_seen_day) = 10),
    kind              TEXT NOT NULL,
    class             BIGINT NOT NULL CHECK (class IN (1, 2, 3)),
    status            TEXT NOT NULL CHECK (status IN ('OPEN', 'HEALING', 'HEALED', 'RESOLVED', 'ACCEPTED')),
    subject           TEXT NOT NULL,
    order_id          TEXT,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    evidence          TEXT NOT NULL,
    suggested_fix     TEXT,
    resolution        TEXT,
    resolved_by       TEXT,
    accepted_until_ms BIGINT,
    reopened          BIGINT NOT NULL DEFAULT 0 CHECK (reopened >= 0),
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL,
    CHECK ((status = 'ACCEPTED') = (accepted_until_ms IS NOT NULL))
);
CREATE INDEX recon_break_queue ON recon_break (status, class, break_id);
CREATE INDEX recon_break_day ON recon_break (psp, last_seen_day);

-- What the settlement of a PSP's day booked: one ledger transaction per part
-- (settle:{psp}:{day}:{currency}:{through_line_id}) covering the day's matched-or-not first
-- copies of lines up to through_line_id; a later report of the day books a further part.
CREATE TABLE recon_settlement (
    ledger_transaction_id TEXT PRIMARY KEY,
    psp                   TEXT NOT NULL,
    day                   TEXT NOT NULL,
    currency              TEXT NOT NULL,
    through_line_id       BIGINT NOT NULL,
    line_count            BIGINT NOT NULL,
    created_at_ms         BIGINT NOT NULL,
    UNIQUE (psp, day, currency, through_line_id)
);

-- Refunds an approved fix made at the PSP of a capture our books never had (the buyer was told
-- the payment failed, or the PSP captured twice): no order's refund, but ours all the same, so
-- runs pair the PSP's refund line with it. refund_id = recon-break-{break_id}: one per break.
CREATE TABLE recon_fix_refund (
    refund_id            TEXT PRIMARY KEY,
    break_id             BIGINT NOT NULL REFERENCES recon_break (break_id),
    psp                  TEXT NOT NULL,
    payment_reference    TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL CHECK (amount_minor > 0),
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    psp_refund_reference TEXT NOT NULL,
    created_at_ms        BIGINT NOT NULL
);
CREATE INDEX recon_fix_refund_payment ON recon_fix_refund (psp, payment_reference);

-- Expectations: the captures of a day (pay-in ledger transactions by time) and the orders of a
-- PSP payment (by reference).
CREATE INDEX ledger_transaction_kind_time ON ledger_transaction (kind, created_at_ms);
CREATE INDEX payment_order_psp_reference ON payment_order (psp_reference);

-- What the PSP reported is evidence: never edited, never deleted, never truncated.
CREATE TRIGGER recon_file_append_only BEFORE UPDATE OR DELETE ON recon_file
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER recon_file_no_truncate BEFORE TRUNCATE ON recon_file
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
CREATE TRIGGER recon_line_append_only BEFORE UPDATE OR DELETE ON recon_line
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER recon_line_no_truncate BEFORE TRUNCATE ON recon_line
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
