//! Client secrets. A secret is 256 random bits, shown to the operator once and stored only as a
//! SHA-256 hash. A fast hash is the right tool here: the secret is random, not a password, so
//! there is nothing for a slow hash to protect against, and token requests stay cheap.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kontor_domain::tenant::SecretHash;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "ksec_";
const HASH_SCHEME: &str = "sha256:";

/// A freshly generated client secret. Its `Debug` hides the value.
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret itself, for showing once to whoever created the client.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        hash_secret(&self.0)
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

pub fn hash_secret(secret: &str) -> SecretHash {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    SecretHash(format!("{HASH_SCHEME}{hex}"))
}

/// Compares in constant time, so response timing reveals nothing about the stored hash.
pub fn verify_secret(presented: &str, stored: &SecretHash) -> bool {
    let candidate = hash_secret(presented);
    candidate.0.as_bytes().ct_eq(stored.0.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_against_their_hash_only() {
        let secret = ClientSecret::generate();
        assert!(secret.reveal().starts_with(PREFIX));
        assert_eq!(secret.reveal().len(), PREFIX.len() + 43);
        let hash = secret.hash();
        assert!(hash.0.starts_with(HASH_SCHEME));
        assert!(!hash.0.contains(secret.reveal()));
        assert!(verify_secret(secret.reveal(), &hash));
        assert!(!verify_secret("ksec_wrong", &hash));
        assert!(!verify_secret(ClientSecret::generate().reveal(), &hash));
        assert!(!format!("{secret:?}").contains(secret.reveal()));
    }
}
