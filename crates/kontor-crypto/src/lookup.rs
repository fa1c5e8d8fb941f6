//! Keyed hashes for values the hub must find again without keeping them readable: a tenant's
//! Idempotency-Key and a fingerprint of its request, a user's `external_id` (a blind index).
//!
//! One random 32-byte deployment key, stored wrapped like a data key, is the root. Each use
//! derives its own key from it with a label, `HMAC(root, label)`, and a tenant-scoped use
//! derives again with the tenant id, so equal values of two tenants (or two uses) never hash
//! alike. Without the root key nothing stored can be checked against a guess.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::{CryptoError, KEY_LEN};

/// A key for HMAC-SHA256. Never printed, never stored unwrapped.
pub struct LookupKey {
    key: hmac::Key,
}

impl fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LookupKey(<redacted>)")
    }
}

impl LookupKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength)?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The key for one use, `HMAC(self, label)`: independent of every other label's.
    pub fn derive(&self, label: &str) -> LookupKey {
        let tag = hmac::sign(&self.key, label.as_bytes());
        LookupKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref()),
        }
    }

    /// `prefix` + base64url(HMAC-SHA256 over the parts, each length-prefixed so that no two
    /// different lists of parts hash alike).
    pub fn tag(&self, prefix: &str, parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(ctx.sign().as_ref()))
    }

    /// Whether `tag` is [`LookupKey::tag`]'s over the parts (without its prefix), compared in
    /// constant time: for tags handed out and shown back (a cursor's), where a comparison that
    /// stops at the first wrong byte would let a forger find one byte at a time.
    pub fn verify(&self, parts: &[&[u8]], tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let mut message = Vec::new();
        for part in parts {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part);
        }
        hmac::verify(&self.key, &message, &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_and_tags_are_separated() {
        let root = LookupKey::from_bytes(&[7; 32]).unwrap();
        let a = root.derive("a");
        let b = root.derive("b");
        let t = |k: &LookupKey| k.tag("", &[b"v"]);
        assert_ne!(t(&a), t(&b));
        assert_ne!(t(&a), t(&root));
        assert_eq!(t(&a.derive("t")), t(&root.derive("a").derive("t")));
        assert_ne!(t(&a.derive("t")), t(&a.derive("u")));
        let x = a.tag("p.", &[b"ab", b"c"]);
        assert!(x.starts_with("p."));
        assert_eq!(x, a.tag("p.", &[b"ab", b"c"]));
        assert_ne!(x, a.tag("p.", &[b"a", b"bc"]));
        assert_ne!(x, b.tag("p.", &[b"ab", b"c"]));
        let other = LookupKey::from_bytes(&[8; 32]).unwrap().derive("a");
        assert_ne!(x, other.tag("p.", &[b"ab", b"c"]));
        assert!(a.verify(&[b"ab", b"c"], x.trim_start_matches("p.")));
        assert!(!a.verify(&[b"a", b"bc"], x.trim_start_matches("p.")));
        assert!(!b.verify(&[b"ab", b"c"], x.trim_start_matches("p.")));
        assert!(!a.verify(&[b"ab", b"c"], "not base64!"));
        assert!(LookupKey::from_bytes(&[1; 31]).is_err());
        assert_eq!(format!("{root:?}"), "LookupKey(<redacted>)");
    }
}
