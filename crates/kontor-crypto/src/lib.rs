//! Envelope encryption. Every user gets a random data key; what the hub must keep secret about
//! them (bank tokens and consent secrets) is sealed with it, and the data key itself is stored
//! wrapped by a key-encryption key from the configuration. Erasing a user deletes the wrapped
//! data key, which leaves any copy of their sealed data (in a backup, say) unreadable.
//!
//! AES-256-GCM throughout (ring), with a fresh random 96-bit nonce per message and associated
//! data binding each ciphertext to the record and field it belongs to, so a ciphertext copied
//! into another row does not decrypt.
//!
//! `lookup` holds the deployment's key for keyed hashes (HMAC-SHA256): what must be found again
//! by value (an `external_id`, an Idempotency-Key) without being stored readable or guessable.
//!
//! `webhook` holds the other secret the hub keeps for tenants: webhook signing secrets, and the
//! Standard Webhooks signatures made with them.

mod lookup;
mod webhook;

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

pub use lookup::LookupKey;
pub use webhook::WebhookSecret;

const KEY_LEN: usize = 32;
const SEALED_PREFIX: &str = "s1.";
const WRAPPED_PREFIX: &str = "w1.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("a key must be exactly 32 bytes")]
    KeyLength,
    #[error("a key id must be 1-32 letters, digits, '-' or '_'")]
    KeyId,
    #[error("no key-encryption key with id {0:?} is configured")]
    UnknownKey(String),
    #[error("the keyring has no keys")]
    Empty,
    #[error("malformed ciphertext")]
    Malformed,
    /// Wrong key, wrong associated data, or tampering.
    #[error("decryption failed")]
    Decrypt,
    #[error("the system random source failed")]
    Random,
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, CryptoError> {
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::KeyLength);
    }
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::KeyLength)
}

fn seal_with(key: &LessSafeKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CryptoError::Random)?;
    let mut buffer = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buffer,
    )
    .map_err(|_| CryptoError::Random)?;
    let mut out = nonce.to_vec();
    out.extend(buffer);
    Ok(out)
}

fn open_with(key: &LessSafeKey, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
    let mut buffer = body.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(plain.to_vec())
}

/// The key-encryption keys. The active one wraps new data keys; all unwrap, so a key can be
/// rotated by adding a new active key and re-wrapping at leisure.
pub struct Keyring {
    active: String,
    keys: HashMap<String, LessSafeKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A data key in clear, for the length of one operation or, in the service's key cache, a few
/// seconds of memory. Never printed, never stored unwrapped.
#[derive(Clone)]
pub struct DataKey(LessSafeKey);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key wrapped by a key-encryption key: `w1.<kek id>.<base64url(nonce‖ciphertext‖tag)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey(String);

impl WrappedKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The id of the key-encryption key that wrapped it.
    pub fn key_id(&self) -> Option<&str> {
        self.0.strip_prefix(WRAPPED_PREFIX)?.split('.').next()
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Keyring {
    /// `keys` in order of preference: the first is active.
    pub fn new(keys: &[(String, Vec<u8>)]) -> Result<Self, CryptoError> {
        let (active, _) = keys.first().ok_or(CryptoError::Empty)?;
        let mut map = HashMap::new();
        for (id, bytes) in keys {
            if !valid_key_id(id) {
                return Err(CryptoError::KeyId);
            }
            map.insert(id.clone(), aead_key(bytes)?);
        }
        Ok(Self {
            active: active.clone(),
            keys: map,
        })
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// A new random data key, and its wrapped form bound to `owner` (e.g. the user id).
    pub fn new_data_key(&self, owner: &str) -> Result<(DataKey, WrappedKey), CryptoError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CryptoError::Random)?;
        let wrapped = self.wrap_bytes(&bytes, owner)?;
        Ok((DataKey(aead_key(&bytes)?), wrapped))
    }

    fn unwrap_bytes(&self, wrapped: &WrappedKey, owner: &str) -> Result<Vec<u8>, CryptoError> {
        let rest = wrapped
            .0
            .strip_prefix(WRAPPED_PREFIX)
            .ok_or(CryptoError::Malformed)?;
        let (id, body) = rest.split_once('.').ok_or(CryptoError::Malformed)?;
        let kek = self
            .keys
            .get(id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let sealed = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed)?;
        open_with(kek, &sealed, owner.as_bytes())
    }

    fn wrap_bytes(&self, bytes: &[u8], owner: &str) -> Result<WrappedKey, CryptoError> {
        let kek = self.keys.get(&self.active).ok_or(CryptoError::Empty)?;
        let sealed = seal_with(kek, bytes, owner.as_bytes())?;
        let encoded = URL_SAFE_NO_PAD.encode(sealed);
        Ok(WrappedKey(format!(
            "{WRAPPED_PREFIX}{}.{encoded}",
            self.active
        )))
    }

    /// A new random deployment key for keyed hashes, and its wrapped form bound to `owner`.
    pub fn new_lookup_key(&self, owner: &str) -> Result<(LookupKey, WrappedKey), CryptoError> {
        let bytes = random_key()?;
        let wrapped = self.wrap_bytes(&bytes, owner)?;
        Ok((LookupKey::from_bytes(&bytes)?, wrapped))
    }

    pub fn unwrap_lookup_key(
        &self,
        wrapped: &WrappedKey,
        owner: &str,
    ) -> Result<LookupKey, CryptoError> {
        LookupKey::from_bytes(&self.unwrap_bytes(wrapped, owner)?)
    }

    pub fn unwrap_key(&self, wrapped: &WrappedKey, owner: &str) -> Result<DataKey, CryptoError> {
        aead_key(&self.unwrap_bytes(wrapped, owner)?).map(DataKey)
    }

    /// Re-wraps a data key under the active key-encryption key (for key rotation).
    pub fn rewrap(&self, wrapped: &WrappedKey, owner: &str) -> Result<WrappedKey, CryptoError> {
        self.wrap_bytes(&self.unwrap_bytes(wrapped, owner)?, owner)
    }
}

impl DataKey {
    /// Seals `plaintext`, bound to `context` (say, `connections/con_uk_…/secrets`).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, CryptoError> {
        let sealed = seal_with(&self.0, plaintext, context.as_bytes())?;
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(CryptoError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed)?;
        open_with(&self.0, &bytes, context.as_bytes())
    }
}

/// 32 random bytes, for generating keys.
pub fn random_key() -> Result<[u8; KEY_LEN], CryptoError> {
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_of(ids: &[(&str, u8)]) -> Keyring {
        let keys: Vec<(String, Vec<u8>)> = ids
            .iter()
            .map(|(id, b)| ((*id).to_owned(), vec![*b; 32]))
            .collect();
        Keyring::new(&keys).unwrap()
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_context() {
        let keyring = ring_of(&[("k1", 1)]);
        let (key, wrapped) = keyring.new_data_key("usr_uk_a").unwrap();
        let sealed = key
            .seal(b"refresh-token-123", "connections/con_uk_x/secrets")
            .unwrap();
        assert!(!sealed.contains("refresh"));
        assert_eq!(
            key.open(&sealed, "connections/con_uk_x/secrets").unwrap(),
            b"refresh-token-123"
        );
        assert_eq!(
            key.open(&sealed, "connections/con_uk_y/secrets"),
            Err(CryptoError::Decrypt)
        );

        let again = keyring.unwrap_key(&wrapped, "usr_uk_a").unwrap();
        assert_eq!(
            again.open(&sealed, "connections/con_uk_x/secrets").unwrap(),
            b"refresh-token-123"
        );
        assert!(matches!(
            keyring.unwrap_key(&wrapped, "usr_uk_b"),
            Err(CryptoError::Decrypt)
        ));

        let (other, _) = keyring.new_data_key("usr_uk_a").unwrap();
        assert_eq!(
            other.open(&sealed, "connections/con_uk_x/secrets"),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn nonces_differ_and_tampering_is_detected() {
        let keyring = ring_of(&[("k1", 1)]);
        let (key, _) = keyring.new_data_key("o").unwrap();
        let a = key.seal(b"same", "c").unwrap();
        let b = key.seal(b"same", "c").unwrap();
        assert_ne!(a, b);
        let mut tampered = a.into_bytes();
        let last = tampered.len() - 5;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(key.open(&tampered, "c").is_err());
        for garbage in ["", "s1.", "s1.!!", "x1.AAAA", "s1.AAAA"] {
            assert!(key.open(garbage, "c").is_err(), "{garbage}");
        }
    }

    #[test]
    fn rotation_rewraps_under_the_new_key() {
        let old = ring_of(&[("k1", 1)]);
        let (key, wrapped) = old.new_data_key("u").unwrap();
        let sealed = key.seal(b"secret", "ctx").unwrap();
        let rotated = ring_of(&[("k2", 2), ("k1", 1)]);
        assert!(
            rotated.unwrap_key(&wrapped, "u").is_ok(),
            "old wraps still open"
        );
        let rewrapped = rotated.rewrap(&wrapped, "u").unwrap();
        assert_eq!(rewrapped.key_id(), Some("k2"));
        let only_new = ring_of(&[("k2", 2)]);
        let key = only_new.unwrap_key(&rewrapped, "u").unwrap();
        assert_eq!(key.open(&sealed, "ctx").unwrap(), b"secret");
        assert!(matches!(
            only_new.unwrap_key(&wrapped, "u"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_are_validated() {
        assert!(matches!(Keyring::new(&[]), Err(CryptoError::Empty)));
        assert!(matches!(
            Keyring::new(&[("k".into(), vec![0; 31])]),
            Err(CryptoError::KeyLength)
        ));
        assert!(matches!(
            Keyring::new(&[("bad id".into(), vec![0; 32])]),
            Err(CryptoError::KeyId)
        ));
        assert!(!format!("{:?}", ring_of(&[("k1", 9)])).contains('9'));
    }
}
