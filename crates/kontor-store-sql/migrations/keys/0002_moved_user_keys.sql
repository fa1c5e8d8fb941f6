-- Users whose data key moved to another cell's key store (an online move, docs/ARCHITECTURE.md).
-- Written in the source key store when the move freezes, before the key is copied: from then on
-- no key is made or imported here for that user (a process with stale routes is refused), so the
-- copy is the only one once the source's key is deleted by the move's cleanup. Ids only.
CREATE TABLE moved_user_keys (
    user_id     TEXT   PRIMARY KEY,
    move_id     TEXT   NOT NULL,
    to_cell     TEXT   NOT NULL,
    moved_at    BIGINT NOT NULL
);
