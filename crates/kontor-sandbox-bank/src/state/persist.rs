//! The sandbox's state on disk, so that a restarted sandbox still knows the consents, tokens,
//! authorisations and payments its clients hold.
//!
//! One JSON file holds the seed, the clock (start, how far it was moved, when it first started
//! on the wall clock) and, per bank, every resource the API created. The generated accounts and
//! transactions are not stored: they follow from the seed, the bank and the clock's start, and
//! the bookings of executed payments follow from the payments. Faults, `traceparent` records,
//! sessions of the decoupled-SCA app page and (strict mode) client registrations made at run
//! time are not kept.
//!
//! The file is replaced whole, crash-safely: written to `<file>.tmp`, flushed to disk, renamed
//! over the old one, and the folder flushed; a reader sees the old state or the new one, never
//! half of one. A file that cannot be read or does not fit the sandbox being started is an
//! error naming the file, never a silent fresh start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::consent::{BgConsent, UsageCounter};
use super::payment::Payment;
use super::sca::Authorisation;
use super::uk::{
    AccessToken, AuthCode, IdempotencyRecord, IdempotentOp, RefreshToken, UkAccountConsent,
    UkPaymentConsent,
};
use crate::core::clock::ClockSnapshot;

/// The version of the file's layout; a file of another version is refused.
pub const FORMAT: u32 = 1;

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "sandbox state file {}: {reason} (to start the sandbox afresh, delete this file)",
    path.display()
)]
pub struct StateFileError {
    pub path: PathBuf,
    pub reason: String,
}

impl StateFileError {
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Everything the file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    pub format: u32,
    pub seed: u64,
    pub clock: ClockSnapshot,
    pub banks: BTreeMap<String, BankSnapshot>,
}

/// What one bank created through its API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankSnapshot {
    /// The bank's customers when saved: accounts are addressed by their position.
    pub customers: Vec<String>,
    pub id_counter: u64,
    pub consents: BTreeMap<String, BgConsent>,
    pub payments: BTreeMap<String, Payment>,
    pub authorisations: BTreeMap<String, Authorisation>,
    pub uk_account_consents: BTreeMap<String, UkAccountConsent>,
    pub uk_payment_consents: BTreeMap<String, UkPaymentConsent>,
    pub access_tokens: BTreeMap<String, AccessToken>,
    pub refresh_tokens: BTreeMap<String, RefreshToken>,
    pub codes: BTreeMap<String, AuthCode>,
    #[serde(with = "pairs")]
    pub idempotency: BTreeMap<(String, IdempotentOp, String), IdempotencyRecord>,
    pub usage: UsageCounter,
}

/// Reads the file; `None` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Saved>, StateFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StateFileError::new(path, format!("cannot read it: {err}"))),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|err| StateFileError::new(path, format!("not valid JSON: {err}")))?;
    let format = value.get("format").and_then(serde_json::Value::as_u64);
    if format != Some(u64::from(FORMAT)) {
        return Err(StateFileError::new(
            path,
            format!(
                "written in format {}, this sandbox reads format {FORMAT}",
                format.map_or_else(|| "(none)".to_string(), |f| f.to_string())
            ),
        ));
    }
    let saved: Saved = serde_path_to_error::deserialize(value).map_err(|err| {
        StateFileError::new(
            path,
            format!("unreadable at `{}`: {}", err.path(), err.inner()),
        )
    })?;
    Ok(Some(saved))
}

/// Replaces the file with `saved`: a temporary file beside it, flushed, renamed over it.
pub fn store(path: &Path, saved: &Saved) -> Result<(), StateFileError> {
    let fail =
        |what: &str, err: std::io::Error| StateFileError::new(path, format!("{what}: {err}"));
    let bytes = serde_json::to_vec(saved)
        .map_err(|err| StateFileError::new(path, format!("cannot encode the state: {err}")))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("cannot create its folder", e))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp).map_err(|e| fail("cannot write it", e))?;
        file.write_all(&bytes)
            .map_err(|e| fail("cannot write it", e))?;
        file.sync_all().map_err(|e| fail("cannot flush it", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| fail("cannot replace it", e))?;
    // The rename itself is durable once the folder is flushed (where folders can be opened).
    if let Ok(folder) = std::fs::File::open(&dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// A sandbox user's login name, as the state holds it. (An alias, so that serde does not take
/// `Option<&'static str>` fields for text borrowed from the file.)
pub type Username = &'static str;

/// A sandbox user named in the file, as the `'static` name the state holds.
pub mod psu {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<&'static str>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
        let name: Option<String> = Option::deserialize(d)?;
        name.map(|name| {
            crate::data::users::find(&name)
                .map(|user| user.username)
                .ok_or_else(|| D::Error::custom(format!("unknown sandbox user `{name}`")))
        })
        .transpose()
    }
}

/// A map whose keys are not strings, as a list of `[key, value]` pairs.
pub mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
