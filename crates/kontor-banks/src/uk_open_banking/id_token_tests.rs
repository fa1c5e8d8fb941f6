//! id_tokens made here, signed PS256 with a test key, and checked against its JWK.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::*;
use crate::seal::SealKey;
use crate::seal::tests::demo_seal;

const NOW: i64 = 1_800_000_000;

fn jwks(seal: &SealKey, kid: &str) -> Jwks {
    let (_, cert) = X509Certificate::from_der(seal.cert_der()).unwrap();
    let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
        panic!("RSA");
    };
    let strip = |b: &[u8]| URL_SAFE_NO_PAD.encode(&b[b.iter().position(|x| *x != 0).unwrap()..]);
    Jwks {
        keys: vec![Jwk {
            kty: "RSA".into(),
            kid: Some(kid.into()),
            usage: Some("sig".into()),
            n: Some(strip(rsa.modulus)),
            e: Some(strip(rsa.exponent)),
            crv: None,
            x: None,
            y: None,
        }],
    }
}

fn token(seal: &SealKey, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let input = format!("{}.{}", enc(header), enc(claims));
    let signature = seal.sign_pss_sha256(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "https://bank.example/thames",
        "aud": "hub-client",
        "sub": "cns-1",
        "exp": NOW + 3600,
        "iat": NOW,
        "nonce": "n-1",
        "c_hash": half_hash("code-1"),
        "s_hash": half_hash("state-1"),
        "openbanking_intent_id": "cns-1",
    })
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: "https://bank.example/thames",
        client_id: "hub-client",
        nonce: Some("n-1"),
        code: "code-1",
        state: Some("state-1"),
        intent_id: Some("cns-1"),
        now: NOW,
    }
}

fn ps256(kid: &str) -> serde_json::Value {
    serde_json::json!({ "alg": "PS256", "kid": kid, "typ": "JWT" })
}

#[test]
fn a_good_id_token_passes_and_each_broken_claim_is_named() {
    let seal = demo_seal();
    let keys = jwks(&seal, "k1");
    let good = token(&seal, &ps256("k1"), &claims());
    assert_eq!(validate(&good, &keys, &expected()), Ok(()));
    assert_eq!(key_id(&good).as_deref(), Some("k1"));

    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("iss", serde_json::json!("https://evil.example"), "iss"),
        ("aud", serde_json::json!("someone-else"), "aud"),
        ("aud", serde_json::json!(["hub-client", "other"]), "aud"),
        ("exp", serde_json::json!(NOW - 120), "expired"),
        ("exp", serde_json::Value::Null, "exp is missing"),
        ("iat", serde_json::json!(NOW + 600), "iat"),
        ("nonce", serde_json::json!("n-2"), "nonce"),
        ("c_hash", serde_json::json!(half_hash("code-2")), "c_hash"),
        ("s_hash", serde_json::json!(half_hash("state-2")), "s_hash"),
        (
            "openbanking_intent_id",
            serde_json::json!("cns-2"),
            "intent",
        ),
    ];
    for (claim, value, problem) in cases {
        let mut c = claims();
        c[*claim] = value.clone();
        let err = validate(&token(&seal, &ps256("k1"), &c), &keys, &expected()).unwrap_err();
        assert!(err.contains(problem), "{claim}: {err}");
    }
    // An array audience with the hub as the authorised party is fine.
    let mut c = claims();
    c["aud"] = serde_json::json!(["hub-client", "other"]);
    c["azp"] = serde_json::json!("hub-client");
    assert_eq!(
        validate(&token(&seal, &ps256("k1"), &c), &keys, &expected()),
        Ok(())
    );
}

#[test]
fn signatures_algorithms_and_keys_are_checked() {
    let seal = demo_seal();
    let keys = jwks(&seal, "k1");
    let good = token(&seal, &ps256("k1"), &claims());

    // Claims changed under the signature.
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims();
    c["nonce"] = serde_json::json!("n-1");
    c["sub"] = serde_json::json!("someone");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap()),
        parts[2]
    );
    assert!(
        validate(&forged, &keys, &expected())
            .unwrap_err()
            .contains("does not verify")
    );

    // The signature changed.
    let mut raw = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    raw[5] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(raw));
    assert!(validate(&flipped, &keys, &expected()).is_err());

    // alg none and HS256 are refused whatever follows.
    for alg in ["none", "HS256", "RS256"] {
        let t = token(
            &seal,
            &serde_json::json!({ "alg": alg, "kid": "k1" }),
            &claims(),
        );
        assert!(
            validate(&t, &keys, &expected())
                .unwrap_err()
                .contains("alg"),
            "{alg}"
        );
    }
    // A key the bank does not publish.
    let t = token(&seal, &ps256("k2"), &claims());
    assert!(
        validate(&t, &keys, &expected())
            .unwrap_err()
            .contains("no key")
    );
    assert!(!keys.knows(Some("k2")));
    assert!(keys.knows(Some("k1")));
    // Garbage.
    assert!(validate("a.b", &keys, &expected()).is_err());
    assert!(validate("!!.!!.!!", &keys, &expected()).is_err());
}

#[test]
fn half_hash_matches_the_openid_example() {
    // OpenID Connect Core, appendix A.4: the at_hash of this access token.
    assert_eq!(
        half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
}
