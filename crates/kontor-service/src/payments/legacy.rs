//! Idempotency keys an earlier release stored in plaintext (the key, and a bare SHA-256 of the
//! request), converted to their keyed forms (`crate::lookup`) by `kontor migrate`.

use crate::error::ServiceResult;
use crate::hub::Hub;
use crate::lookup;

const BATCH: usize = 500;

impl Hub {
    /// Converts every finished idempotency key still in the legacy form; returns how many.
    /// Resumable (each key converts on its own). Keys still held by a running request are left
    /// for a later run, or converted when a replay next touches them.
    pub async fn convert_idempotency_keys(&self) -> ServiceResult<u64> {
        let root = self.vault().lookup_key(self.control()).await?;
        let mut converted = 0;
        loop {
            let batch = self.control().legacy_idempotency_keys(BATCH).await?;
            let mut progressed = false;
            for row in &batch {
                let key = lookup::idempotency_key(root, &row.tenant, &row.key);
                let hash = lookup::request_hash(root, &row.tenant, &row.request_hash);
                if self
                    .control()
                    .convert_idempotency_key(row, &key, &hash)
                    .await?
                {
                    converted += 1;
                    progressed = true;
                }
            }
            if batch.len() < BATCH || !progressed {
                return Ok(converted);
            }
        }
    }
}
