-- Payments initiated for users, their phases (the recovery points of initiation) and status
-- history. Creditor, debtor and remittance are kept sealed with the user's data key.
CREATE TABLE payments (
    id                    TEXT   PRIMARY KEY,
    tenant_id             TEXT   NOT NULL,
    user_id               TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bank_id               TEXT   NOT NULL,
    scheme                TEXT   NOT NULL,
    status                TEXT   NOT NULL,
    phase                 TEXT   NOT NULL,
    amount_minor          BIGINT NOT NULL,
    currency              TEXT   NOT NULL,
    end_to_end_id         TEXT   NOT NULL,
    redirect_uri          TEXT   NOT NULL,
    -- creditor, debtor, remittance, authorisation token: sealed JSON
    details               TEXT   NOT NULL,
    authorize_token_hash  TEXT   NOT NULL,
    -- the connector's session (bank ids, tokens), sealed
    session               TEXT,
    state_hash            TEXT,
    state_expires_at      BIGINT,
    bank_payment_id       TEXT,
    bank_status           TEXT,
    next_poll_at          BIGINT,
    poll_attempts         BIGINT NOT NULL DEFAULT 0,
    lease_owner           TEXT,
    lease_until           BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX payments_by_user ON payments (tenant_id, user_id, created_at, id);
CREATE INDEX payments_by_tenant ON payments (tenant_id, created_at, id);
CREATE INDEX payments_by_phase ON payments (phase, updated_at);
CREATE INDEX payments_polls_due ON payments (next_poll_at);

-- Every status a payment had, with what the bank said verbatim. Append-only.
CREATE TABLE payment_status_history (
    payment_id   TEXT   NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    status       TEXT   NOT NULL,
    bank_status  TEXT,
    at           BIGINT NOT NULL,
    PRIMARY KEY (payment_id, seq)
);
