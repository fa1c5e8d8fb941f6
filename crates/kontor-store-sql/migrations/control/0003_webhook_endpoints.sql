-- Webhook endpoints, per tenant, and the per-tenant data keys that seal their signing secrets.

-- A tenant's data key, wrapped by a key-encryption key (the same keyring that wraps users' keys).
CREATE TABLE tenant_keys (
    tenant_id   TEXT   PRIMARY KEY REFERENCES tenants (id),
    data_key    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhook_endpoints (
    id                   TEXT   PRIMARY KEY,
    tenant_id            TEXT   NOT NULL REFERENCES tenants (id),
    url                  TEXT   NOT NULL,
    description          TEXT,
    -- space-separated event types, or '*' for all
    events               TEXT   NOT NULL,
    -- enabled or disabled
    status               TEXT   NOT NULL,
    -- tenant or failing, while disabled
    disabled_reason      TEXT,
    disabled_at          BIGINT,
    -- the signing secret (whsec_…), sealed with the tenant's data key
    secret               TEXT   NOT NULL,
    -- the secret before the last rotation, sealed, and until when it still signs
    previous_secret      TEXT,
    previous_expires_at  BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant_id, created_at, id);
