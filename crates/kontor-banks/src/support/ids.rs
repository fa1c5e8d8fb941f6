//! Identifiers the connectors make up: random ones (request ids as UUID v4, PKCE verifiers,
//! nonces) and ones derived from a caller's key, which come out the same on every call.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random (version 4) UUID in its hyphenated lower-case form, as `X-Request-ID` and
/// `x-fapi-interaction-id` require.
pub(crate) fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hyphenated(&bytes)
}

/// A UUID derived from `name`: the first 16 bytes of its SHA-256, marked as version 8 (RFC 9562
/// §5.8, the custom version; its Appendix B.2 shows exactly this name-based use). The same name
/// always gives the same UUID.
pub(crate) fn uuid_from_name(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    for (to, from) in bytes.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hyphenated(&bytes)
}

/// SHA-256 of `name`, base64url without padding (43 characters), cut to `len`.
pub(crate) fn digest_token(name: &str, len: usize) -> String {
    URL_SAFE_NO_PAD
        .encode(Sha256::digest(name.as_bytes()))
        .chars()
        .take(len)
        .collect()
}

fn hyphenated(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether `raw` is a hyphenated UUID (any version), so a caller's request id can be passed on
/// where the standard wants one.
pub(crate) fn is_uuid(raw: &str) -> bool {
    raw.len() == 36
        && raw.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `bytes` random bytes, base64url without padding: 32 bytes give the 43 characters RFC 7636
/// asks of a PKCE verifier at least.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(is_uuid("99391C7E-AD88-49EC-A2AD-99DDCB1F7721"));
        assert!(!is_uuid("99391c7e-ad88-49ec-a2ad-99ddcb1f772"));
        assert!(!is_uuid("99391c7e_ad88-49ec-a2ad-99ddcb1f7721"));
        assert!(!is_uuid("sync-42"));
    }

    #[test]
    fn uuids_from_names_are_stable_version_8() {
        let a = uuid_from_name("pay-1");
        assert_eq!(a, uuid_from_name("pay-1"));
        assert_ne!(a, uuid_from_name("pay-2"));
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        // SHA-256("abc") starts ba7816bf 8f01cfea 414140de 5dae2223.
        assert_eq!(
            uuid_from_name("abc"),
            "ba7816bf-8f01-8fea-8141-40de5dae2223"
        );
    }

    #[test]
    fn digest_tokens_are_stable_and_cut() {
        assert_eq!(digest_token("abc", 43).len(), 43);
        assert_eq!(digest_token("abc", 10), digest_token("abc", 43)[..10]);
        assert_ne!(digest_token("abc", 10), digest_token("abd", 10));
    }

    #[test]
    fn tokens_are_url_safe() {
        let token = random_token(64);
        assert_eq!(token.len(), 86);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
