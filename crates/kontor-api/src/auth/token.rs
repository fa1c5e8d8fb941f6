//! Bearer tokens: `kt1.<key id>.<claims>.<signature>`, the claims base64url-encoded JSON and the
//! signature an HMAC-SHA256 over everything before it. Tokens are opaque to tenants; the format
//! only has to let any node verify them without a database round trip. Several keys may verify
//! at once (the first signs), so the signing key can be rotated without logging anyone out.
//! A token issued over mutual TLS to a client bound to a certificate carries RFC 8705's
//! confirmation claim, `cnf: {"x5t#S256": …}`, and is good only with that certificate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use kontor_domain::tenant::Scopes;
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, CertificateThumbprint, TenantId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "kt1";

/// A token signing key. At least 32 bytes; `Debug` hides the secret.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    /// The MAC keyed once at construction; cloned per token.
    mac: HmacSha256,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signing key id must be 1-32 letters, digits, '-' or '_'")]
    BadId,
    #[error("a signing key must be at least 32 bytes")]
    TooShort,
}

impl SigningKey {
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        let id_ok = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(KeyError::BadId);
        }
        if secret.len() < 32 {
            return Err(KeyError::TooShort);
        }
        let mac =
            <HmacSha256 as KeyInit>::new_from_slice(secret).map_err(|_| KeyError::TooShort)?;
        Ok(Self {
            id: id.to_owned(),
            mac,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, signed: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac
    }
}

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub tenant: TenantId,
    pub client: ApiClientId,
    pub scopes: Scopes,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The certificate the token is bound to (RFC 8705), if any.
    pub certificate: Option<CertificateThumbprint>,
}

#[derive(Serialize, Deserialize)]
struct WireClaims {
    ten: String,
    cli: String,
    scp: String,
    iat: i64,
    exp: i64,
    /// Absent in unbound tokens, and in every token issued before binding existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// RFC 8705 §3.1's confirmation method.
#[derive(Serialize, Deserialize)]
struct Confirmation {
    #[serde(rename = "x5t#S256")]
    x5t_s256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

#[derive(Debug, Clone)]
pub struct TokenService {
    /// The first key signs; all verify.
    keys: Vec<SigningKey>,
    ttl_seconds: i64,
}

impl TokenService {
    /// `keys` must not be empty; the first one signs new tokens.
    pub fn new(keys: Vec<SigningKey>, ttl_seconds: i64) -> Option<Self> {
        if keys.is_empty() || ttl_seconds <= 0 {
            return None;
        }
        Some(Self { keys, ttl_seconds })
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// An unbound token.
    pub fn issue(
        &self,
        tenant: &TenantId,
        client: &ApiClientId,
        scopes: &Scopes,
        now: Timestamp,
    ) -> (String, Claims) {
        self.issue_bound(tenant, client, scopes, None, now)
    }

    /// A token bound to `certificate` when given (RFC 8705 `cnf`).
    pub fn issue_bound(
        &self,
        tenant: &TenantId,
        client: &ApiClientId,
        scopes: &Scopes,
        certificate: Option<CertificateThumbprint>,
        now: Timestamp,
    ) -> (String, Claims) {
        let claims = Claims {
            tenant: tenant.clone(),
            client: client.clone(),
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: now.plus_seconds(self.ttl_seconds),
            certificate,
        };
        let wire = WireClaims {
            ten: tenant.to_string(),
            cli: client.to_string(),
            scp: scopes.to_string(),
            iat: now.unix_seconds(),
            exp: claims.expires_at.unix_seconds(),
            cnf: certificate.map(|c| Confirmation {
                x5t_s256: c.x5t_s256(),
            }),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default());
        let key = &self.keys[0];
        let signed = format!("{VERSION}.{}.{payload}", key.id);
        let signature = URL_SAFE_NO_PAD.encode(key.mac(&signed).finalize().into_bytes());
        (format!("{signed}.{signature}"), claims)
    }

    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(VERSION), Some(kid), Some(payload), Some(signature_b64), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let signed = &token[..token.len() - signature_b64.len() - 1];
        key.mac(signed)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let wire: WireClaims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        let claims = Claims {
            tenant: TenantId::parse(&wire.ten).map_err(|_| TokenError::Malformed)?,
            client: ApiClientId::parse(&wire.cli).map_err(|_| TokenError::Malformed)?,
            scopes: Scopes::parse(&wire.scp).map_err(|_| TokenError::Malformed)?,
            issued_at: Timestamp::from_unix_micros(wire.iat.saturating_mul(1_000_000)),
            expires_at: Timestamp::from_unix_micros(wire.exp.saturating_mul(1_000_000)),
            certificate: wire
                .cnf
                .map(|cnf| CertificateThumbprint::parse(&cnf.x5t_s256))
                .transpose()
                .map_err(|_| TokenError::Malformed)?,
        };
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> SigningKey {
        SigningKey::new(id, &[byte; 32]).unwrap()
    }

    fn ids() -> (TenantId, ApiClientId) {
        (TenantId::generate(), ApiClientId::generate())
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let service = TokenService::new(vec![key("k1", 1)], 900).unwrap();
        let (tenant, client) = ids();
        let now = Timestamp::from_unix_micros(1_700_000_000_000_000);
        let (token, claims) = service.issue(&tenant, &client, &Scopes::all(), now);
        assert!(token.starts_with("kt1.k1."));
        let verified = service.verify(&token, now.plus_seconds(899)).unwrap();
        assert_eq!(verified.tenant, tenant);
        assert_eq!(verified.scopes, Scopes::all());
        assert_eq!(verified.expires_at, claims.expires_at);
        assert_eq!(
            service.verify(&token, now.plus_seconds(900)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let service = TokenService::new(vec![key("k1", 1)], 900).unwrap();
        let (tenant, client) = ids();
        let now = Timestamp::now();
        let (token, _) = service.issue(&tenant, &client, &Scopes::all(), now);
        let parts: Vec<&str> = token.split('.').collect();

        // Claims swapped for another tenant's, signature kept.
        let (other, _) = service.issue(&TenantId::generate(), &client, &Scopes::all(), now);
        let other_payload = other.split('.').nth(2).unwrap();
        let forged = format!("{}.{}.{}.{}", parts[0], parts[1], other_payload, parts[3]);
        assert_eq!(service.verify(&forged, now), Err(TokenError::BadSignature));

        // Signed with a key the service does not have.
        let stranger = TokenService::new(vec![key("k1", 2)], 900).unwrap();
        let (foreign, _) = stranger.issue(&tenant, &client, &Scopes::all(), now);
        assert_eq!(service.verify(&foreign, now), Err(TokenError::BadSignature));

        for garbage in [
            "",
            "kt1",
            "kt1.k1.x",
            "kt2.k1.a.b",
            "kt1.k1.a.b.c",
            "kt1.k1.!!.??",
        ] {
            assert!(service.verify(garbage, now).is_err(), "{garbage:?}");
        }
        assert_eq!(
            service.verify(&token.replacen("kt1.k1.", "kt1.k9.", 1), now),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_bound_token_carries_its_certificate_and_old_tokens_none() {
        let service = TokenService::new(vec![key("k1", 1)], 900).unwrap();
        let (tenant, client) = ids();
        let now = Timestamp::now();
        let thumbprint = CertificateThumbprint::of_der(b"certificate");
        let (token, claims) =
            service.issue_bound(&tenant, &client, &Scopes::all(), Some(thumbprint), now);
        assert_eq!(claims.certificate, Some(thumbprint));
        assert_eq!(
            service.verify(&token, now).unwrap().certificate,
            Some(thumbprint)
        );
        let payload = token.split('.').nth(2).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(json["cnf"]["x5t#S256"], thumbprint.x5t_s256());

        let (unbound, _) = service.issue(&tenant, &client, &Scopes::all(), now);
        let payload = unbound.split('.').nth(2).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(json.get("cnf").is_none(), "{json}");
        assert_eq!(service.verify(&unbound, now).unwrap().certificate, None);
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let (tenant, client) = ids();
        let now = Timestamp::now();
        let old = TokenService::new(vec![key("k1", 1)], 900).unwrap();
        let (token, _) = old.issue(&tenant, &client, &Scopes::all(), now);
        let rotated = TokenService::new(vec![key("k2", 2), key("k1", 1)], 900).unwrap();
        assert!(rotated.verify(&token, now).is_ok());
        let (fresh, _) = rotated.issue(&tenant, &client, &Scopes::all(), now);
        assert!(fresh.starts_with("kt1.k2."));
    }

    #[test]
    fn keys_are_validated() {
        assert_eq!(
            SigningKey::new("k1", &[0; 31]).unwrap_err(),
            KeyError::TooShort
        );
        assert_eq!(
            SigningKey::new("bad id", &[0; 32]).unwrap_err(),
            KeyError::BadId
        );
        assert!(!format!("{:?}", key("k1", 7)).contains('7'));
        assert!(TokenService::new(vec![], 900).is_none());
    }
}
