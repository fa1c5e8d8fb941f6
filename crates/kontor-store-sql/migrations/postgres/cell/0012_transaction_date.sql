-- no-transaction
-- transactions.transaction_date (expand): the date a transaction happened, the bank's booking
-- date, else its transaction date, else the value date, else the day the hub first saw it.
-- Nullable: the previous release does not write it, and rows written before this release are
-- filled in batches by the worker (`backfill_transaction_dates`), found through
-- `transactions_undated`, which is empty once nothing is left. NOT NULL and the drop of
-- `transactions_undated` come one release later (contract).
--
-- Run outside a transaction, statement by statement (see README.md, rule 6): the index builds
-- are CONCURRENTLY so that writes go on while they run. Each statement may run again after a
-- failed attempt (IF NOT EXISTS; an INVALID index left by a failed build is dropped by the
-- runner first).
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS transaction_date TEXT;
CREATE INDEX CONCURRENTLY IF NOT EXISTS transactions_by_transaction_date
    ON transactions (tenant_id, account_id, transaction_date, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS transactions_undated
    ON transactions (id) WHERE transaction_date IS NULL;
