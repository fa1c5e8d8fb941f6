-- external_id is sealed (expand). `external_id_sealed` holds the tenant's reference sealed with
-- the user's data key ("s1.…"); the old `external_id` column keeps its NOT NULL and its
-- UNIQUE (tenant_id, external_id) but now holds the blind index ("xi1.…", an HMAC of the
-- reference under a key derived for the tenant), which is what lookups and the uniqueness per
-- tenant use. Rows written before this release hold the reference in plaintext there with
-- `external_id_sealed` NULL; `kontor migrate` converts them in batches (it needs the keys, so it
-- cannot be SQL), and until then reads and the uniqueness check accept both forms.
ALTER TABLE users ADD COLUMN external_id_sealed TEXT;
