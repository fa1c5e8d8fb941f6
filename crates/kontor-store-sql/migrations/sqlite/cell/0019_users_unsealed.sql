-- The users an earlier release wrote with a plaintext `external_id`, for the check that a new
-- user's reference is not among them; see the PostgreSQL twin, which builds it CONCURRENTLY.
CREATE INDEX users_unsealed
    ON users (tenant_id, external_id) WHERE external_id_sealed IS NULL;
