-- Tenants and their OAuth2 API clients. Times are microseconds since the Unix epoch (UTC).
CREATE TABLE tenants (
    id          TEXT   PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_clients (
    id           TEXT   PRIMARY KEY,
    tenant_id    TEXT   NOT NULL REFERENCES tenants (id),
    -- "sha256:<hex>" of the client secret; the secret itself is never stored.
    secret_hash  TEXT   NOT NULL,
    -- space-separated OAuth2 scopes
    scopes       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE INDEX api_clients_by_tenant ON api_clients (tenant_id, created_at);
