-- A region's key store: its users' data keys, each wrapped by a key-encryption key. It is a
-- database of its own, apart from the region's cell, so that neither the cell nor any backup of
-- the cell holds a key; its own backups are kept briefly (docs/OPERATIONS.md).

CREATE TABLE user_keys (
    user_id     TEXT   PRIMARY KEY,
    data_key    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Users whose key was shredded (erased users): no key is ever made or imported for them again.
-- Ids only, no personal data.
CREATE TABLE shredded_user_keys (
    user_id      TEXT   PRIMARY KEY,
    shredded_at  BIGINT NOT NULL
);
