//! Berlin Group message signing, as the NextGenPSD2 Implementation Guidelines 1.3.8 profile
//! draft-cavage-http-signatures: `Digest` (SHA-256 of the body, the empty body for reads),
//! `Signature` over `digest`, `x-request-id` and, when the request carries them, `psu-id`,
//! `psu-corporate-id`, `tpp-redirect-uri` and `date`, signed `rsa-sha256` with the QSealC's key
//! and named by `keyId="SN=<serial>,CA=<issuer>"`, and the QSealC itself in
//! `TPP-Signature-Certificate` (base64 DER).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};

use crate::BankError;
use crate::http::{MessageSigner, put};
use crate::seal::SealKey;

/// The headers signed whenever present, after the two always signed, in this order.
const WHEN_PRESENT: [&str; 4] = ["psu-id", "psu-corporate-id", "tpp-redirect-uri", "date"];

/// Signs every request to a Berlin Group bank with the hub's QSealC.
#[derive(Debug, Clone)]
pub struct QsealSigner {
    seal: Arc<SealKey>,
    certificate: String,
}

impl QsealSigner {
    pub fn new(seal: Arc<SealKey>) -> Self {
        let certificate = STANDARD.encode(seal.cert_der());
        Self { seal, certificate }
    }
}

/// `SHA-256=<base64>` of the body, exactly as sent.
pub(crate) fn digest(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

impl MessageSigner for QsealSigner {
    fn sign(&self, headers: &mut HeaderMap, body: &[u8]) -> Result<(), BankError> {
        put(headers, "digest", &digest(body))?;
        let mut names = vec!["digest", "x-request-id"];
        names.extend(WHEN_PRESENT.iter().filter(|n| headers.contains_key(**n)));
        let mut lines = Vec::with_capacity(names.len());
        for name in &names {
            let value = headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| BankError::protocol(format!("cannot sign without {name}")))?;
            lines.push(format!("{name}: {value}"));
        }
        let signature = self
            .seal
            .sign_pkcs1_sha256(lines.join("\n").as_bytes())
            .map_err(|e| BankError::protocol(e.to_string()))?;
        let value = format!(
            r#"keyId="{}",algorithm="rsa-sha256",headers="{}",signature="{}""#,
            self.seal.berlin_group_key_id(),
            names.join(" "),
            STANDARD.encode(signature)
        );
        put(headers, "signature", &value)?;
        put(headers, "tpp-signature-certificate", &self.certificate)
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::RSA_PKCS1_2048_8192_SHA256;

    use super::*;
    use crate::seal::tests::{demo_seal, verifies};

    /// The `Signature` header's parameters.
    fn params(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
        let value = headers["signature"].to_str().unwrap();
        value
            .split("\",")
            .map(|part| {
                let (k, v) = part.split_once("=\"").unwrap();
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect()
    }

    /// Verifies as a bank would, from the request alone: the digest of `body`, the signing
    /// string rebuilt from the named headers, the key from `TPP-Signature-Certificate`.
    fn bank_accepts(headers: &HeaderMap, body: &[u8]) -> bool {
        let p = params(headers);
        let cert = STANDARD
            .decode(headers["tpp-signature-certificate"].as_bytes())
            .unwrap();
        let signing_string: Vec<String> = p["headers"]
            .split(' ')
            .map(|n| format!("{n}: {}", headers[n].to_str().unwrap()))
            .collect();
        let signature = STANDARD.decode(&p["signature"]).unwrap();
        headers["digest"].to_str().unwrap() == digest(body)
            && verifies(
                &RSA_PKCS1_2048_8192_SHA256,
                &cert,
                signing_string.join("\n").as_bytes(),
                &signature,
            )
    }

    fn request_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        put(
            &mut headers,
            "x-request-id",
            "99391c7e-ad88-49ec-a2ad-99ddcb1f7721",
        )
        .unwrap();
        put(&mut headers, "psu-ip-address", "192.168.8.78").unwrap();
        put(
            &mut headers,
            "tpp-redirect-uri",
            "https://hub.example/cb?state=s",
        )
        .unwrap();
        headers
    }

    #[test]
    fn the_digest_is_sha_256_of_the_exact_body() {
        // Known answers: SHA-256 of "" and of "abc" (FIPS 180-2 B.1).
        assert_eq!(
            digest(b""),
            "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            digest(b"abc"),
            "SHA-256=ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn a_signed_request_verifies_with_its_certificate() {
        let seal = Arc::new(demo_seal());
        let signer = QsealSigner::new(seal.clone());
        let body = br#"{"access":{"allPsd2":"allAccounts"}}"#;
        let mut headers = request_headers();
        signer.sign(&mut headers, body).unwrap();
        let p = params(&headers);
        assert_eq!(p["keyId"], seal.berlin_group_key_id());
        assert_eq!(p["algorithm"], "rsa-sha256");
        // psu-ip-address is not among the headers the guidelines sign.
        assert_eq!(p["headers"], "digest x-request-id tpp-redirect-uri");
        assert!(bank_accepts(&headers, body));

        // A read: the empty body's digest, only the two headers always signed.
        let mut read = HeaderMap::new();
        put(
            &mut read,
            "x-request-id",
            "1b3ab8e8-0fd5-43d2-946e-d75958b172e7",
        )
        .unwrap();
        put(&mut read, "consent-id", "c-1").unwrap();
        signer.sign(&mut read, b"").unwrap();
        assert_eq!(params(&read)["headers"], "digest x-request-id");
        assert!(bank_accepts(&read, b""));
    }

    #[test]
    fn tampering_is_detected() {
        let signer = QsealSigner::new(Arc::new(demo_seal()));
        let body = br#"{"instructedAmount":{"currency":"EUR","amount":"12.00"}}"#;
        let mut headers = request_headers();
        put(&mut headers, "psu-id", "alice").unwrap();
        signer.sign(&mut headers, body).unwrap();
        assert!(params(&headers)["headers"].contains("psu-id"));
        assert!(bank_accepts(&headers, body));

        // Another body under the same (valid) signature.
        assert!(!bank_accepts(
            &headers,
            br#"{"instructedAmount":{"currency":"EUR","amount":"9912.00"}}"#
        ));
        // A signed header changed.
        let mut changed = headers.clone();
        put(&mut changed, "psu-id", "mallory").unwrap();
        assert!(!bank_accepts(&changed, body));
        // The signature itself changed.
        let mut flipped = headers.clone();
        let p = params(&headers);
        let mut raw = STANDARD.decode(&p["signature"]).unwrap();
        raw[0] ^= 0x80;
        let value = headers["signature"]
            .to_str()
            .unwrap()
            .replace(&p["signature"], &STANDARD.encode(raw));
        put(&mut flipped, "signature", &value).unwrap();
        assert!(!bank_accepts(&flipped, body));
    }
}
