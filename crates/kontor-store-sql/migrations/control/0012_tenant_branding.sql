-- How a tenant looks on the hosted connect and payment pages, set by an operator with
-- `kontor tenants update`: a display name, an https logo URL and an accent colour (#rrggbb),
-- each validated by the binary before it is written. A tenant without a row uses its name and
-- the hub's colours. Expand-only: older releases ignore the table.
CREATE TABLE tenant_branding (
    tenant_id     TEXT   PRIMARY KEY REFERENCES tenants (id),
    display_name  TEXT,
    logo_url      TEXT,
    accent_color  TEXT,
    updated_at    BIGINT NOT NULL
);
