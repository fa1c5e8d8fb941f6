-- transactions.transaction_date (expand): the date a transaction happened, the bank's booking
-- date, else its transaction date, else the value date, else the day the hub first saw it.
-- Nullable: the previous release does not write it, and rows written before this release are
-- filled in batches by the worker (`backfill_transaction_dates`), found through
-- `transactions_undated`, which is empty once nothing is left. NOT NULL and the drop of
-- `transactions_undated` come one release later (contract). SQLite has no CONCURRENTLY: its
-- twin (PostgreSQL) runs outside a transaction, this one inside, as usual.
ALTER TABLE transactions ADD COLUMN transaction_date TEXT;
CREATE INDEX transactions_by_transaction_date
    ON transactions (tenant_id, account_id, transaction_date, id);
CREATE INDEX transactions_undated
    ON transactions (id) WHERE transaction_date IS NULL;
