-- What tenants see of a connection's syncing (GET /v1/connections/{id}): how the last failed
-- sync ended, kept after a success. `sync_failures` (0002) counts the failures in a row.
ALTER TABLE connections ADD COLUMN last_sync_error_code TEXT;
ALTER TABLE connections ADD COLUMN last_sync_error_message TEXT;
ALTER TABLE connections ADD COLUMN last_sync_error_at BIGINT;
-- A first sync the user started (sealed: their IP address, sent to the bank), so that one
-- resumed after a crash is still the user's and not an unattended read. Cleared once it is done.
ALTER TABLE connections ADD COLUMN first_sync_psu_ip TEXT;
ALTER TABLE connections ADD COLUMN first_sync_started_at BIGINT;
