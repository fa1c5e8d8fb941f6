-- End users of tenants living in this cell's region. Times are microseconds since the Unix epoch.
CREATE TABLE users (
    id           TEXT   PRIMARY KEY,
    tenant_id    TEXT   NOT NULL,
    external_id  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT users_tenant_external_id UNIQUE (tenant_id, external_id)
);

-- Keyset pagination of a tenant's users in creation order.
CREATE INDEX users_by_tenant_created ON users (tenant_id, created_at, id);
