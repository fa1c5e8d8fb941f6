-- Online moves of a tenant's (or one user's) rows from one cell to another of the same region
-- (docs/ARCHITECTURE.md, "Moving a tenant or user between cells").
--
-- `cell_moves` is the journal: each move's phase is recorded here BEFORE the step it names runs,
-- so a crashed move is resumed from its phase (`kontor_store_sql::moves::resume`). Cells are
-- named by their configuration name (`de-1`). `subject` is `tenant:<id>` or `user:<id>`;
-- `finished_at` is set when the move is done, failed for good or aborted, and at most one
-- unfinished move per subject exists (the partial unique index; a tenant move and a move of one
-- of its users are kept apart by the start transaction, which is serializable).
CREATE TABLE cell_moves (
    id            TEXT   PRIMARY KEY,
    subject       TEXT   NOT NULL,
    tenant_id     TEXT   NOT NULL,
    -- NULL for a whole tenant's move
    user_id       TEXT,
    region        TEXT   NOT NULL,
    from_cell     TEXT   NOT NULL,
    to_cell       TEXT   NOT NULL,
    -- planned, copying, catching_up, frozen, verified, switched, cleaning, done, failed, aborted
    phase         TEXT   NOT NULL,
    -- microseconds every process is given to refresh its routes before the source is cleaned
    grace_us      BIGINT NOT NULL,
    -- what went wrong last (a stable code and a message without personal data)
    last_error    TEXT,
    -- per-table verification (JSON: table, rows, hash), written when verified
    verification  TEXT,
    -- when the writes were paused and when they resumed (the switch)
    frozen_at     BIGINT,
    switched_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE UNIQUE INDEX cell_moves_one_open ON cell_moves (subject) WHERE finished_at IS NULL;
CREATE INDEX cell_moves_by_tenant ON cell_moves (tenant_id, created_at, id);

-- Where a moved tenant's (or user's) rows live now. Ids carry the cell they were created in (the
-- "home" cell) and never change. A tenant's route (`user_id` '') sends the tenant's rows whose
-- home is `from_cell` to `to_cell`; a user's route (`from_cell` '', a user has one home) sends
-- all of that user's rows to `to_cell` and wins over the tenant's. Written in the same control
-- transaction as the move's `switched` phase; a later move bends routes that point at its
-- source, so a route is always one hop.
CREATE TABLE cell_routes (
    tenant_id   TEXT   NOT NULL,
    -- '' for the whole tenant
    user_id     TEXT   NOT NULL,
    -- the rows' home cell; '' for a user's route
    from_cell   TEXT   NOT NULL,
    to_cell     TEXT   NOT NULL,
    move_id     TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, from_cell)
);
