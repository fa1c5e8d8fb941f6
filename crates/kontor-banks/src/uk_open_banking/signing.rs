//! Signing what the hub sends a UK bank: the pluggable signer (the hub's registered key in
//! production), the OpenID Connect request object (a JWT), and `x-jws-signature`, the detached
//! JWS (RFC 7515 Appendix F) over a payment request's body that the Read/Write API requires on
//! every PISP `POST`, with the Open Banking header claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::BankError;

/// Signs what the hub sends a UK bank with the hub's key: the OpenID Connect request object (a
/// JWT) sent to the authorisation endpoint, and the detached JWS of every payment request body
/// (`x-jws-signature`). Production banks require a signature with the key registered for the
/// hub's client (PS256). A sandbox takes [`ClientSecretSigner`], the default when the bank's
/// profile has a client secret; [`Unsigned`] only does for the request object (the sandbox
/// refuses an `x-jws-signature` without a signature).
pub trait RequestObjectSigner: Send + Sync + std::fmt::Debug {
    /// The JWS `alg` header value (`PS256` for Open Banking; `none` when unsigned).
    fn algorithm(&self) -> &str;
    /// The JWS `kid` header value.
    fn key_id(&self) -> Option<&str> {
        None
    }
    /// The `http://openbanking.org.uk/iss` claim of a payment request's JWS: the hub as the
    /// directory knows it (`{org-id}/{software-statement-id}`). Default: the client id.
    fn issuer(&self) -> Option<&str> {
        None
    }
    /// The signature over `header.payload` (both base64url), raw bytes.
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, BankError>;
}

/// An unsecured JWT (`alg: none`, RFC 7519 §6).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsigned;

impl RequestObjectSigner for Unsigned {
    fn algorithm(&self) -> &str {
        "none"
    }

    fn sign(&self, _signing_input: &[u8]) -> Result<Vec<u8>, BankError> {
        Ok(Vec::new())
    }
}

/// HS256 keyed with the client secret: the symmetric signature OpenID Connect Core §10.1 defines
/// for clients that share a secret with the provider, and what the connector signs with when the
/// profile has a secret and no other signer is set. A sandbox takes it; Open Banking production
/// banks require PS256 with the hub's registered key (a signer of its own).
#[derive(Clone)]
pub struct ClientSecretSigner {
    secret: String,
}

impl ClientSecretSigner {
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for ClientSecretSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretSigner").finish_non_exhaustive()
    }
}

impl RequestObjectSigner for ClientSecretSigner {
    fn algorithm(&self) -> &str {
        "HS256"
    }

    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, BankError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .map_err(|_| BankError::protocol("the client secret cannot key HS256"))?;
        mac.update(signing_input);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

/// PS256 with the hub's seal key (OBSeal): what FAPI and the Read/Write API require of request
/// objects, client assertions and `x-jws-signature`. `kid` is the key's id in the directory (by
/// default its RFC 7638 thumbprint); the JWS issuer is `{org id}/{software statement id}` (by
/// default read from the certificate's `OU` and `CN`).
#[derive(Debug, Clone)]
pub struct SealSigner {
    seal: std::sync::Arc<crate::seal::SealKey>,
    kid: String,
    issuer: Option<String>,
}

impl SealSigner {
    pub fn new(
        seal: std::sync::Arc<crate::seal::SealKey>,
        kid: Option<String>,
        issuer: Option<String>,
    ) -> Self {
        let kid = kid.unwrap_or_else(|| seal.jwk_thumbprint().to_owned());
        let issuer = issuer.or_else(|| seal.directory_issuer().map(str::to_owned));
        Self { seal, kid, issuer }
    }
}

impl RequestObjectSigner for SealSigner {
    fn algorithm(&self) -> &str {
        "PS256"
    }

    fn key_id(&self) -> Option<&str> {
        Some(&self.kid)
    }

    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, BankError> {
        self.seal
            .sign_pss_sha256(signing_input)
            .map_err(|e| BankError::protocol(e.to_string()))
    }
}

/// `header.payload.signature`, each part base64url without padding.
pub(super) fn request_object(
    signer: &dyn RequestObjectSigner,
    claims: &serde_json::Value,
) -> Result<String, BankError> {
    let mut header = serde_json::json!({ "alg": signer.algorithm(), "typ": "JWT" });
    if let Some(kid) = signer.key_id() {
        header["kid"] = serde_json::Value::from(kid);
    }
    let encode = |value: &serde_json::Value| {
        serde_json::to_vec(value)
            .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
            .map_err(|_| BankError::protocol("cannot encode the request object"))
    };
    let signing_input = format!("{}.{}", encode(&header)?, encode(claims)?);
    let signature = URL_SAFE_NO_PAD.encode(signer.sign(signing_input.as_bytes())?);
    Ok(format!("{signing_input}.{signature}"))
}

const IAT: &str = "http://openbanking.org.uk/iat";
const ISS: &str = "http://openbanking.org.uk/iss";
const TAN: &str = "http://openbanking.org.uk/tan";
/// The trust anchor of the Open Banking directory.
const TRUST_ANCHOR: &str = "openbanking.org.uk";

/// `BASE64URL(header)..BASE64URL(signature)`: the payload (the body exactly as sent) is left out
/// of the compact form. Since 3.1.4 the header carries no `b64` claim, so the signing input is
/// `BASE64URL(header).BASE64URL(body)`. `issuer` is the TPP as the bank knows it.
pub(super) fn detached(
    signer: &dyn RequestObjectSigner,
    issuer: &str,
    body: &[u8],
) -> Result<String, BankError> {
    let mut header = serde_json::json!({
        "alg": signer.algorithm(),
        "typ": "JOSE",
        "cty": "application/json",
        IAT: OffsetDateTime::now_utc().unix_timestamp(),
        ISS: issuer,
        TAN: TRUST_ANCHOR,
        "crit": [IAT, ISS, TAN],
    });
    if let Some(kid) = signer.key_id() {
        header["kid"] = serde_json::Value::from(kid);
    }
    let header = serde_json::to_vec(&header)
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        .map_err(|_| BankError::protocol("cannot encode the JWS header"))?;
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = URL_SAFE_NO_PAD.encode(signer.sign(signing_input.as_bytes())?);
    Ok(format!("{header}..{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_request_objects_have_an_empty_signature() {
        let jwt = request_object(&Unsigned, &serde_json::json!({ "a": 1 })).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "none");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["a"], 1);
    }

    #[test]
    fn client_secret_signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        let signer = ClientSecretSigner::new("Jefe");
        let mac = signer.sign(b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(signer.algorithm(), "HS256");
        assert!(!format!("{signer:?}").contains("Jefe"));
    }

    /// Signs with a recognisable "signature" so that the test can see what was signed.
    #[derive(Debug)]
    struct Echo;

    impl RequestObjectSigner for Echo {
        fn algorithm(&self) -> &str {
            "PS256"
        }
        fn key_id(&self) -> Option<&str> {
            Some("key-1")
        }
        fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, BankError> {
            Ok(signing_input.to_vec())
        }
    }

    #[test]
    fn detached_signatures_leave_the_payload_out() {
        let body = br#"{"Data":{}}"#;
        let jws = detached(&Echo, "tpp-1", body).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1], "", "detached: no payload");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["kid"], "key-1");
        assert_eq!(header[ISS], "tpp-1");
        assert_eq!(header[TAN], TRUST_ANCHOR);
        assert!(header[IAT].is_i64());
        assert!(header.get("b64").is_none());
        assert_eq!(header["crit"].as_array().unwrap().len(), 3);
        let signed = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let expected = format!("{}.{}", parts[0], URL_SAFE_NO_PAD.encode(body));
        assert_eq!(signed, expected.as_bytes());
    }
}
