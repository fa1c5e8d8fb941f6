-- Fences of online moves (docs/ARCHITECTURE.md, "Moving a tenant or user between cells"). A row
-- here covers a tenant (`user_id` NULL) or one user of it, in this cell:
--   outgoing  the source while a move is frozen: every write of the subject is refused (retry
--             later); reads go on.
--   gone      the source after the switch: writes refused, the rows hidden from tenant-wide lists
--             and worker claims, until the move's cleanup deletes them and then this row.
--   incoming  the target until the switch: the copied rows are kept out of tenant-wide lists and
--             worker claims, and writes are refused.
-- Every write transaction of a subject reads this table (the read is what makes the final pass of
-- a move sound under PostgreSQL's serializable isolation), so it stays tiny: one row per move
-- in flight.
CREATE TABLE move_fences (
    move_id     TEXT   PRIMARY KEY,
    tenant_id   TEXT   NOT NULL,
    user_id     TEXT,
    state       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX move_fences_by_tenant ON move_fences (tenant_id);
