-- no-transaction
-- The users an earlier release wrote with a plaintext `external_id` (`external_id_sealed` NULL,
-- cell 0011): creating a user checks that none of them holds the new user's reference. Through
-- this index the check reads only such rows, which no creation writes: on PostgreSQL, reading
-- the pages the tenant's creations write to (as the check did through `users_by_tenant_created`)
-- made concurrent creations abort each other. Empty once `kontor migrate` has sealed them all.
--
-- Run outside a transaction, statement by statement (README.md, rule 6): CONCURRENTLY, so
-- writes go on while the index builds; the statement may run again after a failed attempt.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_unsealed
    ON users (tenant_id, external_id) WHERE external_id_sealed IS NULL;
