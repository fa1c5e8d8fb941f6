-- Idempotency keys of requests that create money movement, per tenant. Only a hash of the request
-- is kept, and the id of what it created; the answer is rebuilt from that record on replay.
CREATE TABLE idempotency_keys (
    tenant_id        TEXT   NOT NULL,
    idempotency_key  TEXT   NOT NULL,
    request_hash     TEXT   NOT NULL,
    resource_id      TEXT   NOT NULL,
    -- in_flight or done
    state            TEXT   NOT NULL,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL,
    completed_at     BIGINT,
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
