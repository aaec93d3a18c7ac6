-- How the buyer pays: 'direct' (the server charges a PSP token) or 'hosted' (the PSP's page,
-- then a server-side confirm). payment_token is '' for hosted checkouts.
ALTER TABLE payment_event ADD COLUMN flow TEXT NOT NULL DEFAULT 'direct'
    CHECK (flow IN ('direct', 'hosted'));

-- Every PSP webhook we accepted, once per (psp, event id): duplicates are recognized after a
-- restart too. signaled_at_ms is set once the workflow has been told (or nothing was left to
-- tell); until then a redelivery tries again.
CREATE TABLE webhook_event (
    psp              TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    checkout_id      TEXT,
    payload          TEXT NOT NULL,
    received_at_ms   BIGINT NOT NULL,
    signaled_at_ms   BIGINT,
    outcome          TEXT,
    PRIMARY KEY (psp, event_id)
);
