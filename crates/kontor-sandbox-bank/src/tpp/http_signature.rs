//! Berlin Group message signing: draft-cavage-http-signatures-10 as profiled by the NextGenPSD2
//! Implementation Guidelines 1.3.8 (§12, "Signing Messages"), with the `Digest` (RFC 3230) of the
//! body. The spec file defines the three headers (`components/parameters/Digest`, `Signature`,
//! `TPP-Signature-Certificate` in psd2-api-1.3.8.yaml): `Digest` "is contained if and only if the
//! Signature element is contained", the `Signature` example is
//! `keyId="SN=9FA1,CA=CN=D-TRUST%20CA%202-1%202015,O=D-Trust%20GmbH,C=DE",algorithm="rsa-sha256",
//! headers="Digest X-Request-ID PSU-ID TPP-Redirect-URI Date",signature="…"`, and the certificate
//! "must be contained if a signature is contained".

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512,
    UnparsedPublicKey, VerificationAlgorithm,
};
use sha2::{Digest, Sha256, Sha512};

use super::certs::{PublicKey, TppCertificate};
use super::dn::Dn;

/// Headers the signature must cover: always `digest` and `x-request-id`; the others whenever
/// the request carries them (IG 1.3.8 §12.2, the `headers` parameter).
pub const ALWAYS_SIGNED: [&str; 2] = ["digest", "x-request-id"];
pub const SIGNED_IF_PRESENT: [&str; 4] = ["psu-id", "psu-corporate-id", "date", "tpp-redirect-uri"];

/// The parameters of a `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub key_id: String,
    pub algorithm: Option<String>,
    /// Lower-cased header names, in signing order.
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
}

/// Parses `keyId="…",algorithm="…",headers="…",signature="…"` (any order, quoted values,
/// unknown parameters ignored).
pub fn parse(value: &str) -> Result<SignatureParams, String> {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or("Signature: expected name=\"value\" parameters")?;
        let after = after
            .trim_start()
            .strip_prefix('"')
            .ok_or("Signature: parameter values must be quoted")?;
        let end = after
            .find('"')
            .ok_or("Signature: unterminated quoted value")?;
        params.push((name.trim().to_ascii_lowercase(), after[..end].to_string()));
        rest = after[end + 1..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err("Signature: parameters must be separated by commas".into()),
        };
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let key_id = get("keyid").ok_or("Signature: keyId is missing")?;
    let signature = get("signature").ok_or("Signature: signature is missing")?;
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| "Signature: signature is not base64")?;
    let headers = get("headers")
        .ok_or("Signature: headers is missing (it must list digest and x-request-id)")?
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    Ok(SignatureParams {
        key_id,
        algorithm: get("algorithm"),
        headers,
        signature,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(value)) => {
                out.push(value);
                i += 3;
            }
            (Some(&b), _) => {
                out.push(b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `keyId` (`SN=<hex serial>,CA=<issuer DN>`, the issuer possibly URL-encoded) names
/// `cert`.
pub fn key_id_matches(key_id: &str, cert: &TppCertificate) -> bool {
    let Some(rest) = key_id.trim().strip_prefix("SN=") else {
        return false;
    };
    let Some((serial, issuer)) = rest.split_once(",CA=") else {
        return false;
    };
    let serial = serial.trim().trim_start_matches('0').to_ascii_uppercase();
    let ours = cert.serial_hex();
    let serial_ok = serial == ours || (serial.is_empty() && ours == "0");
    serial_ok && Dn::parse(&percent_decode(issuer)).is_some_and(|dn| dn.matches(&cert.issuer))
}

/// Checks `Digest` against the body: every `SHA-256=`/`SHA-512=` value given must match and at
/// least one must be there.
pub fn check_digest(digest: &str, body: &[u8]) -> Result<(), String> {
    let mut checked = 0;
    for item in digest.split(',') {
        let Some((algorithm, value)) = item.trim().split_once('=') else {
            return Err("Digest must be <algorithm>=<base64>".into());
        };
        let expected = match algorithm.to_ascii_uppercase().as_str() {
            "SHA-256" => STANDARD.encode(Sha256::digest(body)),
            "SHA-512" => STANDARD.encode(Sha512::digest(body)),
            _ => continue,
        };
        if value.trim() != expected {
            return Err(format!("Digest {algorithm} does not match the body"));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("Digest needs a SHA-256 or SHA-512 value".into());
    }
    Ok(())
}

/// The signing string of §2.3 of the draft: `name: value` lines in the order of `headers`.
pub fn signing_string(
    params: &SignatureParams,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<String, String> {
    let mut lines = Vec::with_capacity(params.headers.len());
    for name in &params.headers {
        if name == "(request-target)" {
            lines.push(format!(
                "(request-target): {} {path_and_query}",
                method.to_ascii_lowercase()
            ));
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().map(str::trim))
            .collect::<Result<_, _>>()
            .map_err(|_| format!("header {name} is not text"))?;
        if values.is_empty() {
            return Err(format!("the signed header {name} is not in the request"));
        }
        lines.push(format!("{name}: {}", values.join(", ")));
    }
    Ok(lines.join("\n"))
}

/// Which headers the signature must cover but does not.
pub fn uncovered(params: &SignatureParams, headers: &HeaderMap) -> Vec<&'static str> {
    ALWAYS_SIGNED
        .iter()
        .chain(
            SIGNED_IF_PRESENT
                .iter()
                .filter(|h| headers.contains_key(**h)),
        )
        .copied()
        .filter(|h| !params.headers.iter().any(|p| p == h))
        .collect()
}

/// Verifies the signature with the certificate's key. `algorithm` may be absent (then the key
/// decides); `rsa-sha256`/`SHA256withRSA` are RSASSA-PKCS1-v1_5 with SHA-256.
pub fn verify(
    algorithm: Option<&str>,
    key: &PublicKey,
    signing_string: &str,
    signature: &[u8],
) -> Result<(), String> {
    let algorithm = algorithm.map(str::to_ascii_lowercase);
    let (scheme, key_bytes): (&dyn VerificationAlgorithm, &[u8]) = match (algorithm.as_deref(), key)
    {
        (None | Some("rsa-sha256" | "sha256withrsa"), PublicKey::Rsa { der, .. }) => {
            (&RSA_PKCS1_2048_8192_SHA256, der)
        }
        (Some("rsa-sha512" | "sha512withrsa"), PublicKey::Rsa { der, .. }) => {
            (&RSA_PKCS1_2048_8192_SHA512, der)
        }
        (None | Some("ecdsa-sha256" | "sha256withecdsa"), PublicKey::EcP256(point)) => {
            (&ECDSA_P256_SHA256_ASN1, point)
        }
        (Some(other), _) => {
            return Err(format!(
                "algorithm {other} does not fit the certificate's key (rsa-sha256 for RSA)"
            ));
        }
        (None, _) => return Err("the certificate's key type is not supported".into()),
    };
    UnparsedPublicKey::new(scheme, key_bytes)
        .verify(signing_string.as_bytes(), signature)
        .map_err(|_| "the signature does not verify".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let params = parse(
            r#"keyId="SN=9FA1,CA=CN=D-TRUST%20CA%202-1%202015,O=D-Trust%20GmbH,C=DE",algorithm="rsa-sha256", headers="Digest X-Request-ID PSU-ID TPP-Redirect-URI Date", signature="c2ln""#,
        )
        .unwrap();
        assert_eq!(
            params.headers,
            [
                "digest",
                "x-request-id",
                "psu-id",
                "tpp-redirect-uri",
                "date"
            ]
        );
        assert_eq!(params.algorithm.as_deref(), Some("rsa-sha256"));
        assert_eq!(params.signature, b"sig");
        assert_eq!(percent_decode("CN=D-TRUST%20CA%202-1"), "CN=D-TRUST CA 2-1");
        assert!(parse("keyId=SN").is_err());
        assert!(parse(r#"keyId="a" algorithm="b""#).is_err());
    }

    #[test]
    fn digests() {
        // The spec's example digest is of some body; here, of the empty one.
        assert!(check_digest("SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", b"").is_ok());
        assert!(
            check_digest("SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", b"x").is_err()
        );
        assert!(check_digest("MD5=abc", b"").is_err());
    }
}
