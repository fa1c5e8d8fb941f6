-- Keys of the deployment itself, one row per use (name 'lookup': the root of the keyed hashes
-- that replace plaintext lookups, see kontor-crypto's `lookup`). Each is 32 random bytes wrapped
-- ("w1.<key id>.…") by the key-encryption key that was active when it was made or last rotated,
-- bound to its name; never stored unwrapped.
CREATE TABLE deployment_keys (
    name        TEXT   PRIMARY KEY,
    wrapped     TEXT   NOT NULL,
    sealed_at   BIGINT NOT NULL
);
