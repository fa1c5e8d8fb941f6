-- The user a payment's Idempotency-Key was claimed for, so that erasing the user deletes the
-- key's record (a replay after erasure is then answered like an unknown key). Records claimed
-- before this migration have none: erasure finds those by the ids of the user's payments.
ALTER TABLE idempotency_keys ADD COLUMN user_id TEXT;
CREATE INDEX idempotency_keys_by_user ON idempotency_keys (tenant_id, user_id);
CREATE INDEX idempotency_keys_by_resource ON idempotency_keys (tenant_id, resource_id);
