-- The transaction page's index and the delivery queue's partial indexes; see the PostgreSQL
-- twin, which builds them CONCURRENTLY, for why.
CREATE INDEX transactions_by_account_page
    ON transactions (tenant_id, account_id, sort_date, id);
CREATE INDEX webhook_deliveries_pending_due
    ON webhook_deliveries (next_attempt_at, queued_at, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_pending_queue
    ON webhook_deliveries (endpoint_id, ordering_key, queued_at, id) WHERE state = 'pending';
DROP INDEX transactions_by_account_date;
DROP INDEX webhook_deliveries_due;
DROP INDEX webhook_deliveries_queue;
