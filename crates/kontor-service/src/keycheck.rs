//! The key canary: proof that this node's key-encryption keys are the ones the data was sealed
//! with. Without it, a node configured with other keys (or one that generated its own) starts,
//! says it is ready, and then fails on every sealed field.
//!
//! The canary is a random data key wrapped by the active key-encryption key, kept in the control
//! database. It is sealed when the databases are migrated or a process starts, and sealed again
//! under the new active key after a rotation (a keyring whose first key is new still opens the
//! old canary while the old key stays configured). `/readyz` unwraps it.

use kontor_crypto::{CryptoError, WrappedKey};

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// What the canary's data key is bound to.
const OWNER: &str = "kontor/key-canary";

/// How this node's keys relate to the canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// The keys open the canary, which `key_id` sealed.
    Ok { key_id: String },
    /// The canary was sealed with a key this node is not configured with.
    UnknownKey { key_id: String },
    /// A key with the canary's id is configured, but it is another key.
    WrongKey { key_id: String },
}

impl KeyStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, KeyStatus::Ok { .. })
    }

    /// A stable name for `/readyz`: `ok`, `unknown_key` or `wrong_key`.
    pub fn code(&self) -> &'static str {
        match self {
            KeyStatus::Ok { .. } => "ok",
            KeyStatus::UnknownKey { .. } => "unknown_key",
            KeyStatus::WrongKey { .. } => "wrong_key",
        }
    }

    /// The id of the key-encryption key that sealed the canary.
    pub fn key_id(&self) -> &str {
        match self {
            KeyStatus::Ok { key_id }
            | KeyStatus::UnknownKey { key_id }
            | KeyStatus::WrongKey { key_id } => key_id,
        }
    }

    /// What an operator should read.
    pub fn explain(&self) -> String {
        match self {
            KeyStatus::Ok { key_id } => {
                format!("the key-encryption keys open the canary ({key_id})")
            }
            KeyStatus::UnknownKey { key_id } => format!(
                "the data was sealed with key-encryption key {key_id:?}, which secrets.keys here \
                 does not hold: configure the same secrets.keys on every node"
            ),
            KeyStatus::WrongKey { key_id } => format!(
                "secrets.keys here holds a key {key_id:?} that is not the one the data was sealed \
                 with: configure the same secrets.keys on every node"
            ),
        }
    }
}

impl Hub {
    fn open_wrapped(&self, wrapped: &str, owner: &str) -> ServiceResult<Result<String, KeyStatus>> {
        let wrapped = WrappedKey::from_stored(wrapped.to_owned());
        let key_id = wrapped.key_id().unwrap_or("").to_owned();
        match self.vault().keyring().unwrap_key(&wrapped, owner) {
            Ok(_) => Ok(Ok(key_id)),
            Err(CryptoError::UnknownKey(_)) => Ok(Err(KeyStatus::UnknownKey { key_id })),
            Err(CryptoError::Decrypt | CryptoError::Malformed) => {
                Ok(Err(KeyStatus::WrongKey { key_id }))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Seals the first canary, unless data sealed before it says these are the wrong keys.
    async fn seal_first_canary(&self) -> ServiceResult<Option<KeyStatus>> {
        let control = self.control();
        if let Some((tenant, wrapped)) = control.newest_tenant_key().await?
            && let Err(status) = self.open_wrapped(&wrapped, tenant.as_str())?
        {
            return Ok(Some(status));
        }
        let keyring = self.vault().keyring();
        let (_, wrapped) = keyring.new_data_key(OWNER)?;
        let written = control
            .put_key_canary(wrapped.as_str(), None, self.clock().now())
            .await?;
        Ok(written.then(|| KeyStatus::Ok {
            key_id: keyring.active_key_id().to_owned(),
        }))
    }

    /// `/readyz`'s check: whether these keys open the canary (sealing it first if there is
    /// none yet).
    pub async fn key_status(&self) -> ServiceResult<KeyStatus> {
        self.check_canary(false).await
    }

    /// At migration and start: seals the canary if there is none, and again under the active
    /// key if an older one sealed it (a rotation), as long as these keys open it.
    pub async fn seal_key_canary(&self) -> ServiceResult<KeyStatus> {
        self.check_canary(true).await
    }

    async fn check_canary(&self, reseal: bool) -> ServiceResult<KeyStatus> {
        // Another node may write between our read and our write: read again then.
        for _ in 0..3 {
            let Some(stored) = self.control().key_canary().await? else {
                match self.seal_first_canary().await? {
                    Some(status) => return Ok(status),
                    None => continue,
                }
            };
            let key_id = match self.open_wrapped(&stored, OWNER)? {
                Ok(key_id) => key_id,
                Err(status) => return Ok(status),
            };
            let keyring = self.vault().keyring();
            if !reseal || key_id == keyring.active_key_id() {
                return Ok(KeyStatus::Ok { key_id });
            }
            let rewrapped = keyring.rewrap(&WrappedKey::from_stored(stored.clone()), OWNER)?;
            if self
                .control()
                .put_key_canary(rewrapped.as_str(), Some(&stored), self.clock().now())
                .await?
            {
                tracing::info!(
                    from = %key_id,
                    to = %keyring.active_key_id(),
                    "key canary sealed under the new active key"
                );
                return Ok(KeyStatus::Ok {
                    key_id: keyring.active_key_id().to_owned(),
                });
            }
        }
        Err(ServiceError::Internal(
            "the key canary kept changing while it was checked".to_owned(),
        ))
    }
}
