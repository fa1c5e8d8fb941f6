//! Certificate thumbprints: the SHA-256 of a client certificate's DER, which binds an API client
//! and its access tokens to that certificate (RFC 8705's `x5t#S256`). Operators copy them from
//! `openssl x509 -noout -fingerprint -sha256` (hex with colons) or from a token's `cnf` claim
//! (base64url); both parse, nothing else does.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SHA-256 digest of a certificate (DER). Shown and stored as base64url without padding
/// (43 characters), the form RFC 8705 puts in `cnf.x5t#S256`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateThumbprint([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a certificate thumbprint is the SHA-256 of the certificate's DER: 64 hexadecimal digits \
     (colons allowed, as openssl prints it) or 43 characters of base64url (x5t#S256)"
)]
pub struct ThumbprintError;

impl CertificateThumbprint {
    /// The thumbprint of a certificate given as DER.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses hex (`AB:CD:…` or `abcd…`, either case, optionally after `sha256:` or openssl's
    /// `sha256 Fingerprint=`) or unpadded base64url.
    pub fn parse(raw: &str) -> Result<Self, ThumbprintError> {
        let raw = raw.trim();
        let lowered = raw.to_ascii_lowercase();
        let hex = ["sha256 fingerprint=", "sha256:"]
            .iter()
            .find_map(|prefix| lowered.strip_prefix(prefix))
            .unwrap_or(&lowered);
        if let Some(bytes) = parse_hex(hex) {
            return Ok(Self(bytes));
        }
        if raw.len() == 43 {
            let decoded = URL_SAFE_NO_PAD.decode(raw).map_err(|_| ThumbprintError)?;
            let bytes: [u8; 32] = decoded.try_into().map_err(|_| ThumbprintError)?;
            // Only the canonical encoding: the last character carries 4 unused bits.
            if URL_SAFE_NO_PAD.encode(bytes) == raw {
                return Ok(Self(bytes));
            }
        }
        Err(ThumbprintError)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base64url without padding: the `x5t#S256` form, and how it is stored.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Upper-case hexadecimal with colons, as `openssl x509 -fingerprint -sha256` prints it.
    pub fn hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Hexadecimal of 32 bytes, colons between pairs allowed (all or none).
fn parse_hex(raw: &str) -> Option<[u8; 32]> {
    let digits: String = if raw.contains(':') {
        let pairs: Vec<&str> = raw.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
            return None;
        }
        pairs.concat()
    } else {
        raw.to_owned()
    };
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0_u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(digits.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

impl fmt::Display for CertificateThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.x5t_s256())
    }
}

impl fmt::Debug for CertificateThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateThumbprint({self})")
    }
}

impl Serialize for CertificateThumbprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.x5t_s256())
    }
}

impl<'de> Deserialize<'de> for CertificateThumbprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A certificate bound to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateBinding {
    pub thumbprint: CertificateThumbprint,
    pub bound_at: crate::time::Timestamp,
}

/// Days before `notAfter` from which the hub warns (startup log, `/readyz`, `kontor banks check`).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

crate::words!(
    /// How a certificate's validity stands at some moment.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ExpiryStatus as "expiry status" {
        Ok => "ok",
        /// Expires within [`EXPIRY_WARNING_DAYS`].
        Expiring => "expiring",
        Expired => "expired",
    }
);

impl ExpiryStatus {
    /// The status of a certificate valid until `not_after` at `now` (both Unix seconds).
    pub fn at(not_after: i64, now: i64) -> Self {
        if not_after <= now {
            Self::Expired
        } else if not_after - now <= EXPIRY_WARNING_DAYS * 86_400 {
            Self::Expiring
        } else {
            Self::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64url_name_the_same_digest() {
        let thumbprint = CertificateThumbprint::of_der(b"not really a certificate");
        let hex = thumbprint.hex();
        assert_eq!(hex.len(), 32 * 3 - 1);
        for form in [
            hex.clone(),
            hex.to_lowercase(),
            hex.replace(':', ""),
            format!("sha256 Fingerprint={hex}"),
            format!("SHA256:{}", hex.replace(':', "")),
            format!("  {}\n", thumbprint.x5t_s256()),
        ] {
            assert_eq!(
                CertificateThumbprint::parse(&form),
                Ok(thumbprint),
                "{form}"
            );
        }
        assert_eq!(thumbprint.to_string().len(), 43);
        let json = serde_json::to_string(&thumbprint).unwrap();
        assert_eq!(
            serde_json::from_str::<CertificateThumbprint>(&json).unwrap(),
            thumbprint
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let good = CertificateThumbprint::of_der(b"x");
        let hex = good.hex().replace(':', "");
        let b64 = good.x5t_s256();
        let mut non_canonical = b64.clone();
        // Flip one of the last character's unused bits: decodes to the same bytes elsewhere.
        let last = non_canonical.pop().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.find(last).unwrap();
        non_canonical.push(alphabet.as_bytes()[index ^ 1] as char);
        for bad in [
            String::new(),
            "sha256:".to_owned(),
            hex[..62].to_owned(),
            format!("{hex}00"),
            format!("{}zz", &hex[..62]),
            good.hex().replacen(':', "", 1),
            format!("{b64}="),
            b64[..42].to_owned(),
            b64.replace(|c: char| c.is_ascii_alphabetic(), "+"),
            non_canonical,
            // SHA-1 fingerprints (20 bytes) are not accepted.
            "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01".to_owned(),
        ] {
            assert_eq!(
                CertificateThumbprint::parse(&bad),
                Err(ThumbprintError),
                "{bad:?}"
            );
        }
    }
}
