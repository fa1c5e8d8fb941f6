-- no-transaction
-- Tenant-wide lists of connections and payments (`GET /v1/connections`, `GET /v1/payments`
-- without `user_id`) filter by status or bank and page by (created_at, id): these indexes let
-- such a page be read in order without walking the tenant's other rows. A filter on the
-- creation time alone uses `connections_by_tenant` / `payments_by_tenant` (0002, 0003).
--
-- Run outside a transaction, statement by statement (README.md, rule 6): CONCURRENTLY, so
-- writes go on while the indexes build; each statement may run again after a failed attempt.
CREATE INDEX CONCURRENTLY IF NOT EXISTS connections_by_tenant_status
    ON connections (tenant_id, status, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS connections_by_tenant_bank
    ON connections (tenant_id, bank_id, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_by_tenant_status
    ON payments (tenant_id, status, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_by_tenant_bank
    ON payments (tenant_id, bank_id, created_at, id);
