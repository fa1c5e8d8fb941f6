-- Hardening the connect and payment flows. All columns are added nullable or with a default, so
-- the previous release keeps working during a rollout.

-- The bank login name a tenant bound to the connection from its own KYC (sealed with the
-- user's data key); the connect page then does not ask for it.
ALTER TABLE connections ADD COLUMN psu_id TEXT;
-- Decoupled-SCA starts made from this connect link: each pushes an approval request to
-- someone's banking app, so they are capped per link, across processes.
ALTER TABLE connections ADD COLUMN decoupled_starts BIGINT NOT NULL DEFAULT 0;
-- When the callback state was used. Its hash is kept after use, so that a replayed callback is
-- told apart from a forged one (which changes and reveals nothing).
ALTER TABLE connections ADD COLUMN state_spent_at BIGINT;
ALTER TABLE payments ADD COLUMN state_spent_at BIGINT;
-- Why a payment has its status (the bank's reason for a rejection), no personal data.
ALTER TABLE payments ADD COLUMN status_reason TEXT;
ALTER TABLE payment_status_history ADD COLUMN reason TEXT;
