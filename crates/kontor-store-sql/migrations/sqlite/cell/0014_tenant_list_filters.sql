-- Tenant-wide lists of connections and payments filter by status or bank and page by
-- (created_at, id); see the PostgreSQL twin, which builds the same indexes CONCURRENTLY.
CREATE INDEX connections_by_tenant_status
    ON connections (tenant_id, status, created_at, id);
CREATE INDEX connections_by_tenant_bank
    ON connections (tenant_id, bank_id, created_at, id);
CREATE INDEX payments_by_tenant_status
    ON payments (tenant_id, status, created_at, id);
CREATE INDEX payments_by_tenant_bank
    ON payments (tenant_id, bank_id, created_at, id);
