-- Webhook deliveries: the event log is the outbox. A worker turns each new event into one
-- delivery per endpoint that wants it and marks the event dispatched, in one transaction; each
-- delivery is then attempted until a 2xx or the end of its retry schedule, every attempt logged.

-- When the event was turned into deliveries; NULL while it waits in the outbox. Events recorded
-- before this migration are dispatched by the worker like new ones (to no endpoint: endpoints
-- receive only events recorded after they were created).
ALTER TABLE events ADD COLUMN dispatched_at BIGINT;
CREATE INDEX events_undispatched ON events (created_at, id) WHERE dispatched_at IS NULL;

CREATE TABLE webhook_deliveries (
    id                TEXT   PRIMARY KEY,
    tenant_id         TEXT   NOT NULL,
    event_id          TEXT   NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- in the control database, hence no foreign key
    endpoint_id       TEXT   NOT NULL,
    -- deliveries with the same endpoint and key (the user id; the event id for an event about
    -- no user) are sent one at a time, in queued_at order
    ordering_key      TEXT   NOT NULL,
    queued_at         BIGINT NOT NULL,
    -- pending, succeeded or failed
    state             TEXT   NOT NULL,
    -- retries_exhausted, endpoint_disabled or endpoint_deleted, once failed
    failure           TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    first_attempt_at  BIGINT,
    -- NULL once the delivery is over
    next_attempt_at   BIGINT,
    -- 1 for a redelivery the tenant asked for, 0 for the fan-out of a new event
    redelivery        BIGINT NOT NULL DEFAULT 0,
    -- a worker's claim while it attempts the delivery
    lease_owner       TEXT,
    lease_until       BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    delivered_at      BIGINT
);
-- An event is fanned out to an endpoint once, whichever worker does it.
CREATE UNIQUE INDEX webhook_deliveries_fan_out ON webhook_deliveries (event_id, endpoint_id)
    WHERE redelivery = 0;
-- What is due, and the head of each queue.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, queued_at, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, ordering_key, queued_at, id)
    WHERE state = 'pending';
-- The delivery log of an endpoint, and whether it has delivered anything lately.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (endpoint_id, delivered_at);

-- Every attempt: when, the answer's status (NULL when none came), what went wrong, how long.
CREATE TABLE webhook_attempts (
    delivery_id  TEXT   NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    latency_us   BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, seq)
);

-- Jobs that one worker at a time runs per cell (the webhook dispatcher), leased by name.
CREATE TABLE worker_leases (
    name         TEXT   PRIMARY KEY,
    owner        TEXT   NOT NULL,
    lease_until  BIGINT NOT NULL
);
