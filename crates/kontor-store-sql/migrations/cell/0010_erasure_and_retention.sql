-- Erasure that finishes what it starts, and retention of the event log.
--
-- An erasure is recorded before anything is deleted, with what revoking each of the user's
-- consents at their banks needs (bank, consent id), sealed with the TENANT's data key: the
-- user's key is destroyed by the erasure. The worker resumes an erasure a crash interrupted and
-- revokes the consents, with retries, after the user's data is gone. A finished erasure leaves
-- no row here (its `user.erasure_completed` event says what became of it).
CREATE TABLE erasures (
    user_id       TEXT   PRIMARY KEY,
    tenant_id     TEXT   NOT NULL,
    -- recorded (nothing deleted yet) or erased (the user's data is gone; revocations remain)
    phase         TEXT   NOT NULL,
    requested_at  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX erasures_by_phase ON erasures (phase, updated_at);

CREATE TABLE erasure_revocations (
    id               TEXT   PRIMARY KEY,
    user_id          TEXT   NOT NULL,
    tenant_id        TEXT   NOT NULL,
    connection_id    TEXT   NOT NULL,
    bank_id          TEXT   NOT NULL,
    -- what the bank's DELETE needs (the consent id), sealed with the tenant's data key
    ticket           TEXT   NOT NULL,
    -- pending, revoked or failed (retries exhausted)
    state            TEXT   NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- the stable code of the last bank error, never its message
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX erasure_revocations_by_user ON erasure_revocations (user_id, state);
CREATE INDEX erasure_revocations_due ON erasure_revocations (next_attempt_at, id)
    WHERE state = 'pending';

-- Erasure deletes a user's events (and their deliveries and attempts); retention deletes
-- events by age, in batches.
CREATE INDEX events_by_user ON events (user_id);
CREATE INDEX events_by_age ON events (created_at, id);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
