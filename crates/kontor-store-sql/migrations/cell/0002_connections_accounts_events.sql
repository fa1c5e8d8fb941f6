-- Bank connections and the data read under them, plus the event log (the outbox webhooks
-- deliver from). Personal data from banks is kept sealed with the user's data key.

-- The user's data key, wrapped by a key-encryption key. Users created before this migration
-- get one the first time something of theirs needs sealing.
ALTER TABLE users ADD COLUMN data_key TEXT;

CREATE TABLE connections (
    id                 TEXT   PRIMARY KEY,
    tenant_id          TEXT   NOT NULL,
    user_id            TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- chosen by the tenant or, on the connect page, by the user
    bank_id            TEXT,
    status             TEXT   NOT NULL,
    failure_reason     TEXT,
    -- space-separated: accounts balances transactions
    access             TEXT   NOT NULL,
    redirect_uri       TEXT   NOT NULL,
    language           TEXT,
    -- sha256 of the token in the connect URL
    connect_token_hash TEXT   NOT NULL,
    -- sha256 of the single-use state bound to the bank redirect, and when it lapses
    state_hash         TEXT,
    state_expires_at   BIGINT,
    -- the connector's session (consent id, tokens), sealed
    session            TEXT,
    valid_until        BIGINT,
    -- when the tenant was told the consent lapses soon
    expiry_notified_at BIGINT,
    frequency_per_day  BIGINT NOT NULL,
    -- unattended syncs done on reads_day (UTC, YYYY-MM-DD)
    reads_day          TEXT,
    unattended_reads   BIGINT NOT NULL DEFAULT 0,
    next_sync_at       BIGINT,
    last_synced_at     BIGINT,
    sync_failures      BIGINT NOT NULL DEFAULT 0,
    -- a worker's claim on the connection while it syncs
    lease_owner        TEXT,
    lease_until        BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    authorised_at      BIGINT
);
CREATE INDEX connections_by_user ON connections (tenant_id, user_id, created_at, id);
CREATE INDEX connections_by_tenant ON connections (tenant_id, created_at, id);
CREATE INDEX connections_due ON connections (status, next_sync_at);

CREATE TABLE accounts (
    id               TEXT   PRIMARY KEY,
    tenant_id        TEXT   NOT NULL,
    user_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    connection_id    TEXT   NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    bank_account_id  TEXT   NOT NULL,
    currency         TEXT   NOT NULL,
    kind             TEXT   NOT NULL,
    -- IBAN, names, product: sealed JSON
    details          TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT accounts_connection_bank_account UNIQUE (connection_id, bank_account_id)
);
CREATE INDEX accounts_by_user ON accounts (tenant_id, user_id, created_at, id);

CREATE TABLE balances (
    account_id             TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind                   TEXT   NOT NULL,
    amount_minor           BIGINT NOT NULL,
    currency               TEXT   NOT NULL,
    -- 1, 0, or NULL when the bank does not say
    credit_limit_included  BIGINT,
    reference_date         TEXT,
    last_change_at         BIGINT,
    fetched_at             BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind)
);

CREATE TABLE transactions (
    id            TEXT   PRIMARY KEY,
    tenant_id     TEXT   NOT NULL,
    account_id    TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    dedup_key     TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    booking_date  TEXT,
    value_date    TEXT,
    -- booking date, else value date, else the day first seen: the order lists use
    sort_date     TEXT   NOT NULL,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT   NOT NULL,
    -- counterparty, remittance, references: sealed JSON
    details       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT transactions_account_dedup UNIQUE (account_id, dedup_key)
);
CREATE INDEX transactions_by_account_date ON transactions (account_id, sort_date, id);

-- The event log: written in the same transaction as the change it reports.
CREATE TABLE events (
    id          TEXT   PRIMARY KEY,
    tenant_id   TEXT   NOT NULL,
    user_id     TEXT,
    type        TEXT   NOT NULL,
    -- JSON with ids and counts only, never personal data
    data        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, created_at, id);
