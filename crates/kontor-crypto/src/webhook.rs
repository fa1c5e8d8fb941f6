//! Webhook signing secrets and signatures, as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com>): a secret is `whsec_` followed by base64 of random bytes;
//! a signature is `v1,` followed by base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`
//! keyed with the secret's bytes. Several signatures go space-separated in one header, which is
//! how a rotated secret and its successor both sign while receivers switch over.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

const PREFIX: &str = "whsec_";
const VERSION: &str = "v1,";
/// Bytes of a secret the hub makes; the specification allows 24 to 64.
const SECRET_LEN: usize = 32;

/// A signing secret. Never printed; [`WebhookSecret::reveal`] is for the one response that shows
/// it to the tenant and for sealing it.
#[derive(Clone)]
pub struct WebhookSecret {
    key: hmac::Key,
    text: String,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; SECRET_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CryptoError::Random)?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
            text: format!("{PREFIX}{}", STANDARD.encode(bytes)),
        }
    }

    /// Parses `whsec_<base64>` (24 to 64 bytes once decoded).
    pub fn parse(raw: &str) -> Result<Self, CryptoError> {
        let body = raw.strip_prefix(PREFIX).ok_or(CryptoError::Malformed)?;
        let bytes = STANDARD.decode(body).map_err(|_| CryptoError::Malformed)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(CryptoError::KeyLength);
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// The secret as the tenant configures it in their receiver: `whsec_…`.
    pub fn reveal(&self) -> &str {
        &self.text
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &signed_content(message_id, timestamp, body));
        format!("{VERSION}{}", STANDARD.encode(tag.as_ref()))
    }

    /// Whether any `v1` signature in a `webhook-signature` header value is this secret's, in
    /// constant time per signature.
    pub fn verify(&self, message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let content = signed_content(message_id, timestamp, body);
        header
            .split_ascii_whitespace()
            .filter_map(|sig| sig.strip_prefix(VERSION))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|tag| hmac::verify(&self.key, &content, &tag).is_ok())
    }
}

fn signed_content(message_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(message_id.len() + body.len() + 24);
    content.extend_from_slice(message_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    #[test]
    fn matches_the_specification_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            &format!("v1,bm9wZQ== {signature}")
        ));
        assert!(!secret.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_331,
            body,
            &signature
        ));
        assert!(!secret.verify("msg_other", 1_614_265_330, body, &signature));
    }

    #[test]
    fn generated_secrets_round_trip_and_never_print() {
        let secret = WebhookSecret::generate().unwrap();
        assert!(secret.reveal().starts_with("whsec_"));
        let again = WebhookSecret::parse(secret.reveal()).unwrap();
        assert_eq!(
            again.sign("evt_1", 5, b"{}"),
            secret.sign("evt_1", 5, b"{}")
        );
        assert_ne!(
            WebhookSecret::generate().unwrap().sign("evt_1", 5, b"{}"),
            secret.sign("evt_1", 5, b"{}")
        );
        assert!(!format!("{secret:?}").contains(&secret.reveal()[6..]));
        for bad in ["", "whsec_", "whsec_!!", "sk_AAAA", "whsec_AAAA"] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
        }
    }
}
