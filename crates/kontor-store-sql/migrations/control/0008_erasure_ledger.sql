-- The erasure ledger: which users were erased, in which region and when. Ids only, no personal
-- data. Written before an erasure acts (a crash part-way is finished by replaying it) and
-- replayed onto restored cells and key stores (`kontor erasure replay`), so that a restore never
-- brings an erased user back.
CREATE TABLE erasures (
    user_id    TEXT   PRIMARY KEY,
    tenant_id  TEXT   NOT NULL,
    region     TEXT   NOT NULL,
    erased_at  BIGINT NOT NULL
);
