-- Pay-out, postgres flavour. Keep in step with the other backend's 0013_payouts.sql.
--
-- payout_seller: where a seller is paid (the provider's seller reference and a masked account
-- number only: the bank details live at the provider), the provider's view of the seller
-- (payable only when PARTIALLY_APPROVED or APPROVED), and a pause set when a payout failed or
-- came back, cleared by an operator once the bank account is fixed.
CREATE TABLE payout_seller (
    seller_account      TEXT PRIMARY KEY,
    provider            TEXT NOT NULL CHECK (provider IN ('toss_payouts', 'stripe_connect')),
    provider_seller_ref TEXT NOT NULL,
    masked_account      TEXT NOT NULL,
    provider_status     TEXT NOT NULL
        CHECK (provider_status IN ('APPROVAL_REQUIRED', 'PARTIALLY_APPROVED', 'KYC_REQUIRED', 'APPROVED')),
    paused_reason       TEXT,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL,
    UNIQUE (provider, provider_seller_ref)
);

-- A seller's minimum payout per currency: less than this stays in the balance.
CREATE TABLE payout_minimum (
    seller_account TEXT NOT NULL REFERENCES payout_seller (seller_account),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    minimum_minor  BIGINT NOT NULL CHECK (minimum_minor >= 0),
    PRIMARY KEY (seller_account, currency)
);

-- One row per payout; payout_id = payout-{seller}-{currency}-{period}, which is also the
-- provider's idempotency key, so a period is paid at most once (UNIQUE twice over).
-- RESERVED: the amount moved from the seller's payable account to payouts in transit, the
-- provider not (known to be) asked yet; REQUESTED / IN_TRANSIT / PAID: as the provider says
-- (PAID is not final: a bank can still return it); SETTLED: the return window passed, the money
-- left; FAILED / CANCELED: the amount was booked back to the seller.
CREATE TABLE payout (
    payout_id          TEXT PRIMARY KEY,
    seller_account     TEXT NOT NULL REFERENCES payout_seller (seller_account),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    period             TEXT NOT NULL,
    amount_minor       BIGINT NOT NULL CHECK (amount_minor > 0),
    provider           TEXT NOT NULL,
    destination        TEXT NOT NULL,
    status             TEXT NOT NULL
        CHECK (status IN ('RESERVED', 'REQUESTED', 'IN_TRANSIT', 'PAID', 'SETTLED', 'FAILED', 'CANCELED')),
    provider_payout_id TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    UNIQUE (seller_account, currency, period)
);
CREATE INDEX payout_by_status ON payout (status, seller_account);
