-- A move's keyset pages of a tenant's rows (and, through the parents, of their child tables'
-- rows) as index range scans; see the PostgreSQL twin, which builds the same indexes
-- CONCURRENTLY.
CREATE INDEX users_by_tenant_id ON users (tenant_id, id);
CREATE INDEX connections_by_tenant_id ON connections (tenant_id, id);
CREATE INDEX accounts_by_tenant_id ON accounts (tenant_id, id);
CREATE INDEX transactions_by_tenant_id ON transactions (tenant_id, id);
CREATE INDEX payments_by_tenant_id ON payments (tenant_id, id);
CREATE INDEX events_by_tenant_id ON events (tenant_id, id);
CREATE INDEX webhook_deliveries_by_tenant_id ON webhook_deliveries (tenant_id, id);
