-- Fee rates, postgres flavour. Keep in step with the other backend's 0011_fee_rates.sql.
--
-- The platform's fee per currency (seller_account '') and per seller override, as an
-- append-only history: a change is a new row effective from a moment on, never an edit, so the
-- rate in force at any past capture can always be found (issue 12: "the schedule in force at
-- capture time is the one applied"). The rate in force for (currency, seller) at t: the row of
-- that seller with the latest effective_from_ms <= t, else the default's, else no fee.
CREATE TABLE fee_rate (
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    seller_account    TEXT NOT NULL,
    bps               INTEGER NOT NULL CHECK (bps BETWEEN 0 AND 10000),
    fixed_minor       BIGINT NOT NULL CHECK (fixed_minor >= 0),
    effective_from_ms BIGINT NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    PRIMARY KEY (currency, seller_account, effective_from_ms)
);
CREATE TRIGGER fee_rate_append_only BEFORE UPDATE OR DELETE ON fee_rate
    FOR EACH ROW EXECUTE FUNCTION reject_change();
CREATE TRIGGER fee_rate_no_truncate BEFORE TRUNCATE ON fee_rate
    FOR EACH STATEMENT EXECUTE FUNCTION reject_change();
