-- The changes feed (GET /v1/connections/{id}/transactions/changes): every transaction a sync
-- adds, modifies or removes is one row here, numbered per connection by `seq`, so that a tenant
-- holding a cursor (a position in this numbering) can ask what changed since.
--
-- `seq` comes from `connections.change_seq`, the connection's last number given out, raised in
-- the same transaction that writes the changes: numbers are dense (1, 2, 3, … with no gaps) and
-- in commit order per connection, on every backend, without sequences (whose values are neither
-- gapless nor ordered by commit). Concurrent syncs of one connection are kept apart by the sync
-- lease, and two that slipped past it both update the connection row, which serializes them.
-- A gap in the numbers therefore means rows that are gone (retention), or a sync whose changes
-- were not recorded (one run by the previous release during a rollout, which leaves
-- `changes_synced_at` behind `last_synced_at`; the next sync skips a number for it): a cursor
-- before a gap is answered `cursor_expired`.
--
-- Ids, kinds and times only: nothing personal. Erasure deletes a user's rows with their
-- connections; retention deletes rows older than `retention.events_days`.
ALTER TABLE connections ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN changes_synced_at BIGINT;

CREATE TABLE transaction_changes (
    connection_id   TEXT   NOT NULL,
    seq             BIGINT NOT NULL,
    account_id      TEXT   NOT NULL,
    transaction_id  TEXT   NOT NULL,
    -- added, modified or removed
    kind            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (connection_id, seq)
);
CREATE INDEX transaction_changes_by_age ON transaction_changes (created_at);
