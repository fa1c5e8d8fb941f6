-- The redirect URIs each tenant allows (normalised: scheme and host in lower case, no default
-- port, at least "/" as path), and the key canary. A tenant without rows allows any https URI.
CREATE TABLE tenant_redirect_uris (
    tenant_id   TEXT   NOT NULL REFERENCES tenants (id),
    uri         TEXT   NOT NULL,
    -- the order the operator gave them in
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, uri)
);

-- One row, name 'kek': a random data key wrapped ("w1.<key id>.…") by the key-encryption key
-- that was active when it was sealed. A node whose keys cannot unwrap it is not ready.
CREATE TABLE key_canary (
    name        TEXT   PRIMARY KEY,
    wrapped     TEXT   NOT NULL,
    sealed_at   BIGINT NOT NULL
);
