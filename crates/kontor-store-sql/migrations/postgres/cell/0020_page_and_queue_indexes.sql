-- no-transaction
-- Indexes whose plans do not depend on the planner's statistics, for the hub's hottest reads
-- and its delivery queue. A freshly filled table (a new cell, a tenant's first sync, a backlog
-- of events after an outage) has none until autovacuum's next ANALYZE, and there PostgreSQL
-- chose badly (docs/BENCHMARKS.md, "Issue 12: plans without statistics"):
--
-- * The transaction page (`WHERE tenant_id = $1 AND account_id = $2 ORDER BY sort_date DESC,
--   id DESC LIMIT n`) was served by `transactions_by_transaction_date`, which matches both
--   equalities but not the order, so every page read and sorted all of the account's rows.
--   `transactions_by_account_page` matches the equalities and the order: the page is a range
--   scan that stops after n rows, with or without statistics. It replaces
--   `transactions_by_account_date` (account_id, sort_date, id), whose queries all name the
--   tenant too, or read a whole account (`transactions_account_dedup` serves those).
-- * A delivery claim looks for the due heads of queues among pending deliveries only; the
--   indexes it used also held every delivery ever delivered, so each probe of a queue walked
--   its history. The partial indexes hold pending deliveries alone and replace them.
--
-- Expand first, then drop what the new ones replace; the previous release's queries are
-- served by the new indexes (same columns, or a prefix of them). Run outside a transaction,
-- statement by statement (README.md, rule 6); each statement may run again after a failure.
CREATE INDEX CONCURRENTLY IF NOT EXISTS transactions_by_account_page
    ON transactions (tenant_id, account_id, sort_date, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_pending_due
    ON webhook_deliveries (next_attempt_at, queued_at, id) WHERE state = 'pending';
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_pending_queue
    ON webhook_deliveries (endpoint_id, ordering_key, queued_at, id) WHERE state = 'pending';
DROP INDEX CONCURRENTLY IF EXISTS transactions_by_account_date;
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_due;
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_queue;
