-- no-transaction
-- A move reads a tenant's rows table by table in keyset pages, `WHERE tenant_id = $1 AND
-- id > $2 ORDER BY id LIMIT n`, and the rows of child tables through their parents
-- (`connection_id IN (SELECT id FROM connections WHERE tenant_id = $1 AND id >= $2)`, see
-- `src/moves/tables.rs`). With an index on (tenant_id, id) each such page is an index range scan
-- that stops after n rows, whatever the planner's statistics say: without them (a tenant grown
-- since the last ANALYZE, or small against its cell) PostgreSQL chose another tenant index and
-- sorted all of the tenant's remaining rows for every page, a pass quadratic in the tenant's
-- rows (docs/BENCHMARKS.md, "`kontor-bench move`"). The parents' indexes also give the child
-- tables' pages their parents in key order, from the page's position on.
--
-- Expand only: new indexes, nothing else changes; the previous release ignores them.
-- Run outside a transaction, statement by statement (see README.md, rule 6): CONCURRENTLY, so
-- writes go on while they build; each statement may run again after a failed attempt (IF NOT
-- EXISTS; an INVALID index left by a failed build is dropped by the runner first).
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_by_tenant_id ON users (tenant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS connections_by_tenant_id ON connections (tenant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_by_tenant_id ON accounts (tenant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS transactions_by_tenant_id ON transactions (tenant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_by_tenant_id ON payments (tenant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_by_tenant_id ON events (tenant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_by_tenant_id
    ON webhook_deliveries (tenant_id, id);
