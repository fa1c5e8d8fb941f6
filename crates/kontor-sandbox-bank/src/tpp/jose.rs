//! The JOSE the sandbox needs (RFC 7515/7518): compact JWS parsing, PS256/ES256 verification
//! with a certificate's key, PS256 signing with the sandbox's own key, and its JWK.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, RsaKeyPair,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::certs::PublicKey;

/// A compact JWS taken apart. `payload_b64` is empty for a detached one.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    pub header_b64: &'a str,
    pub payload_b64: &'a str,
    pub header: Map<String, Value>,
    pub signature: Vec<u8>,
}

fn is_base64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits `header.payload.signature` and decodes the header and the signature; `None` when it
/// is not a well-formed compact JWS.
pub fn parse_compact(token: &str) -> Option<CompactJws<'_>> {
    let mut parts = token.split('.');
    let (header_b64, payload_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || header_b64.is_empty()
        || signature_b64.is_empty()
        || ![header_b64, payload_b64, signature_b64]
            .iter()
            .all(|p| is_base64url(p))
    {
        return None;
    }
    let header: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
    Some(CompactJws {
        header_b64,
        payload_b64,
        header,
        signature,
    })
}

/// The claims of a JWS whose payload is a JSON object.
pub fn claims(jws: &CompactJws<'_>) -> Option<Map<String, Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jws.payload_b64).ok()?).ok()
}

/// Algorithms the sandbox accepts from TPPs: FAPI 1.0 Advanced allows PS256 and ES256.
pub const TPP_ALGORITHMS: [&str; 2] = ["PS256", "ES256"];

/// Verifies `signature` over `input` with `alg` and `key`; false for any mismatch of algorithm
/// and key type, RSA keys under 2048 bits, or a bad signature.
pub fn verify(alg: &str, key: &PublicKey, input: &[u8], signature: &[u8]) -> bool {
    match (alg, key) {
        ("PS256", PublicKey::Rsa { der, .. }) => {
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, der)
                .verify(input, signature)
                .is_ok()
        }
        ("ES256", PublicKey::EcP256(point)) => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(input, signature)
                .is_ok()
        }
        _ => false,
    }
}

/// The left half of a SHA-256, base64url: `c_hash`, `s_hash` and `at_hash` for PS256/ES256
/// (OpenID Connect Core §3.3.2.11, FAPI 1.0 Advanced §5.1).
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
}

/// The sandbox's own RSA signing key (`id_token`s, response signatures).
pub struct SigningKey {
    pub kid: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From PKCS#8 DER; the `kid` is the RFC 7638 thumbprint of its public JWK.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        let key = RsaKeyPair::from_pkcs8(pkcs8)?;
        let (n, e) = components(&key);
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Self {
            kid,
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The public JWK, as published at the JWKS URL.
    pub fn jwk(&self) -> Value {
        let (n, e) = components(&self.key);
        json!({ "kty": "RSA", "use": "sig", "alg": "PS256", "kid": self.kid, "n": n, "e": e })
    }

    /// A PS256 signature of `input`, base64url.
    pub fn sign(&self, input: &[u8]) -> String {
        let mut signature = vec![0; self.key.public().modulus_len()];
        match self
            .key
            .sign(&RSA_PSS_SHA256, &self.rng, input, &mut signature)
        {
            Ok(()) => URL_SAFE_NO_PAD.encode(signature),
            // Only fails if the RNG does; an unverifiable signature then says so downstream.
            Err(_) => String::new(),
        }
    }

    /// A compact PS256 JWS of `payload` with `header` (plus `alg` and `kid`).
    pub fn compact(&self, mut header: Map<String, Value>, payload: &[u8]) -> String {
        header.insert("alg".into(), json!("PS256"));
        header.insert("kid".into(), json!(self.kid));
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.sign(input.as_bytes());
        format!("{input}.{signature}")
    }
}

fn components(key: &RsaKeyPair) -> (String, String) {
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    (
        URL_SAFE_NO_PAD.encode(&public.n),
        URL_SAFE_NO_PAD.encode(&public.e),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_hash() {
        assert!(parse_compact("a.b").is_none());
        assert!(parse_compact("a.b.c.d").is_none());
        assert!(parse_compact("eyJhbGciOiJQUzI1NiJ9..c2ln").is_some());
        assert!(parse_compact("eyJhbGciOiJQUzI1NiJ9..c2l+").is_none());
        assert!(parse_compact("bm90IGpzb24..c2ln").is_none());
        // The first 16 bytes of SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(half_hash("abc"), "ungWv48Bz-pBQUDeXa4iIw");
    }

    #[test]
    fn es256_and_mismatched_keys() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let signature = key.sign(&rng, b"input").unwrap();
        let public = PublicKey::EcP256(key.public_key().as_ref().to_vec());
        assert!(verify("ES256", &public, b"input", signature.as_ref()));
        assert!(!verify("ES256", &public, b"other", signature.as_ref()));
        // The algorithm must fit the key: no PS256 with an EC key, no `none`, no HS256.
        assert!(!verify("PS256", &public, b"input", signature.as_ref()));
        assert!(!verify("none", &public, b"input", b""));
        assert!(!verify("HS256", &public, b"input", signature.as_ref()));
    }
}
