//! The test TPP, written for these tests alone (nothing shared with the sandbox's own PKI code
//! or with the hub's connectors): its CA and certificates made with rcgen, the PSD2 QC
//! statements DER-encoded here, an mTLS HTTP client, and the signatures a TPP makes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, SerialNumber,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

// ---- a few DER encoders, for the QC statements ----

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 128 {
        out.push(u8::try_from(len).unwrap());
    } else if len < 256 {
        out.extend([0x81, u8::try_from(len).unwrap()]);
    } else {
        out.extend(u16::try_from(len).unwrap().to_be_bytes());
        out.insert(out.len() - 2, 0x82);
    }
    out.extend_from_slice(content);
    out
}

fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

/// An OID from its dotted text (the arcs used here stay below 2^14 except 19495 and 1862).
fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![u8::try_from(arcs[0] * 40 + arcs[1]).unwrap()];
    for &arc in &arcs[2..] {
        let mut bytes = vec![u8::try_from(arc & 0x7f).unwrap()];
        let mut rest = arc >> 7;
        while rest > 0 {
            bytes.push(0x80 | u8::try_from(rest & 0x7f).unwrap());
            rest >>= 7;
        }
        bytes.reverse();
        body.extend(bytes);
    }
    tlv(0x06, &body)
}

fn utf8(text: &str) -> Vec<u8> {
    tlv(0x0c, text.as_bytes())
}

/// ETSI TS 119 495 role OIDs.
fn role_oid(name: &str) -> &'static str {
    match name {
        "PSP_AS" => "0.4.0.19495.1.1",
        "PSP_PI" => "0.4.0.19495.1.2",
        "PSP_AI" => "0.4.0.19495.1.3",
        "PSP_IC" => "0.4.0.19495.1.4",
        other => panic!("unknown role {other}"),
    }
}

/// `QCStatements` with QcCompliance, QcType (web or eseal) and the PSD2 statement.
fn qc_statements(roles: &[&str], seal: bool) -> Vec<u8> {
    let roles: Vec<Vec<u8>> = roles
        .iter()
        .map(|r| seq(&[oid(role_oid(r)), utf8(r)]))
        .collect();
    let qc_type = if seal {
        "0.4.0.1862.1.6.2"
    } else {
        "0.4.0.1862.1.6.3"
    };
    seq(&[
        seq(&[oid("0.4.0.1862.1.1")]),
        seq(&[oid("0.4.0.1862.1.6"), seq(&[oid(qc_type)])]),
        seq(&[
            oid("0.4.0.19495.2"),
            seq(&[
                seq(&roles),
                utf8("Federal Financial Supervisory Authority"),
                utf8("DE-BAFIN"),
            ]),
        ]),
    ])
}

// ---- the CA and its certificates ----

/// The test TPP's RSA seal key (one for all seal certificates: generating RSA keys is slow).
static RSA_KEY: LazyLock<Vec<u8>> =
    LazyLock::new(|| kontor_sandbox_bank::tpp::generate_rsa_pkcs8(2048).unwrap());

static SERIALS: AtomicU64 = AtomicU64::new(0x1000);

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    /// RFC 4514 text of its subject, as a TPP writes it into `keyId`.
    pub dn: String,
}

impl TestCa {
    pub fn new(common_name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "DE");
        dn.push(DnType::OrganizationName, "Kontor Tests");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(2);
        params.not_after = now + Duration::days(365);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            der: cert.der().to_vec(),
            dn: format!("CN={common_name},O=Kontor Tests,C=DE"),
        }
    }

    pub fn issue(&self, spec: &Spec) -> TestCert {
        let (key, key_pkcs8) = if spec.seal {
            let der = RSA_KEY.clone();
            let key = KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.clone()),
                &PKCS_RSA_SHA256,
            )
            .unwrap();
            (key, der)
        } else {
            let key = KeyPair::generate().unwrap();
            let der = key.serialize_der();
            (key, der)
        };
        let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "DE");
        dn.push(DnType::OrganizationName, "Test TPP GmbH");
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 97]), spec.organization);
        dn.push(DnType::CommonName, spec.common_name);
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(serial));
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            qc_statements(&spec.roles, spec.seal),
        )];
        if !spec.seal {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let now = OffsetDateTime::now_utc();
        if spec.expired {
            params.not_before = now - Duration::days(400);
            params.not_after = now - Duration::days(1);
        } else {
            params.not_before = now - Duration::days(1);
            params.not_after = now + Duration::days(90);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TestCert {
            der: cert.der().to_vec(),
            key_pkcs8,
            serial_hex: format!("{serial:X}"),
            issuer_dn: self.dn.clone(),
            subject_dn: format!(
                "CN={},2.5.4.97={},O=Test TPP GmbH,C=DE",
                spec.common_name, spec.organization
            ),
        }
    }
}

/// What a test certificate says.
#[derive(Clone)]
pub struct Spec {
    pub seal: bool,
    pub roles: Vec<&'static str>,
    pub organization: &'static str,
    pub common_name: &'static str,
    pub expired: bool,
}

impl Spec {
    pub fn qwac(roles: &[&'static str]) -> Spec {
        Spec {
            seal: false,
            roles: roles.to_vec(),
            organization: "PSDDE-BAFIN-777777",
            common_name: "test-app",
            expired: false,
        }
    }

    pub fn qseal(roles: &[&'static str]) -> Spec {
        Spec {
            seal: true,
            ..Spec::qwac(roles)
        }
    }
}

pub struct TestCert {
    pub der: Vec<u8>,
    pub key_pkcs8: Vec<u8>,
    pub serial_hex: String,
    pub issuer_dn: String,
    pub subject_dn: String,
}

impl TestCert {
    pub fn pem(&self) -> String {
        let body = STANDARD.encode(&self.der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// The Berlin Group `keyId`: serial in hex and issuer DN (URL-encoded, as the spec's
    /// example has it).
    pub fn key_id(&self) -> String {
        format!(
            "SN={},CA={}",
            self.serial_hex,
            self.issuer_dn.replace(' ', "%20")
        )
    }

    fn rsa(&self) -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(&self.key_pkcs8).unwrap()
    }

    fn sign(&self, padding: &'static dyn ring::signature::RsaEncoding, input: &[u8]) -> Vec<u8> {
        let key = self.rsa();
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(padding, &SystemRandom::new(), input, &mut signature)
            .unwrap();
        signature
    }
}

/// An HTTPS client trusting `server_ca`, presenting `identity` if given.
pub fn client(server_ca: &[u8], identity: Option<&TestCert>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(server_ca.to_vec())).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(cert) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pkcs8.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

// ---- Berlin Group signatures (draft-cavage-10 as the NextGenPSD2 IG 1.3.8 profiles it) ----

/// `SHA-256=<base64>` of a body.
pub fn digest(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

/// The headers the IG says a signature covers: digest and x-request-id, and the optional ones
/// when present.
pub fn default_coverage(headers: &[(&str, String)]) -> Vec<&'static str> {
    let mut names = vec!["digest", "x-request-id"];
    for optional in ["psu-id", "psu-corporate-id", "date", "tpp-redirect-uri"] {
        if headers.iter().any(|(k, _)| *k == optional) {
            names.push(optional);
        }
    }
    names
}

/// Adds `Digest` (unless there), `Signature` and `TPP-Signature-Certificate` over `covered`.
pub fn sign_bg(
    seal: &TestCert,
    headers: &mut Vec<(&'static str, String)>,
    body: &[u8],
    covered: &[&str],
) {
    if !headers.iter().any(|(k, _)| *k == "digest") {
        headers.push(("digest", digest(body)));
    }
    let lines: Vec<String> = covered
        .iter()
        .map(|name| {
            let value = &headers.iter().find(|(k, _)| k == name).unwrap().1;
            format!("{name}: {value}")
        })
        .collect();
    let signature = seal.sign(&RSA_PKCS1_SHA256, lines.join("\n").as_bytes());
    headers.push((
        "signature",
        format!(
            r#"keyId="{}",algorithm="rsa-sha256",headers="{}",signature="{}""#,
            seal.key_id(),
            covered.join(" "),
            STANDARD.encode(signature)
        ),
    ));
    headers.push(("tpp-signature-certificate", STANDARD.encode(&seal.der)));
}

// ---- UK: JWTs and the detached x-jws-signature ----

/// A compact PS256 JWS.
pub fn jwt(seal: &TestCert, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = seal.sign(&RSA_PSS_SHA256, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The protected header the Read/Write API 3.1.4+ asks for (no `b64`).
pub fn jws_header(kid: &str, iss: &str) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "alg": "PS256",
        "kid": kid,
        "typ": "JOSE",
        "cty": "application/json",
        "http://openbanking.org.uk/iat": now() - 1,
        "http://openbanking.org.uk/iss": iss,
        "http://openbanking.org.uk/tan": "openbanking.org.uk",
        "crit": ["http://openbanking.org.uk/iat", "http://openbanking.org.uk/iss", "http://openbanking.org.uk/tan"],
    }) else {
        unreachable!()
    };
    map
}

/// `header..signature` over `body` with the given header.
pub fn detached(seal: &TestCert, header: &Map<String, Value>, body: &[u8]) -> String {
    let header_b64 = URL_SAFE_NO_PAD.encode(Value::Object(header.clone()).to_string());
    let input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = seal.sign(&RSA_PSS_SHA256, input.as_bytes());
    format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode(signature))
}
