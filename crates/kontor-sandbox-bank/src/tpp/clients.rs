//! UK OAuth2 clients in strict mode: their registration (as a bank's dynamic client
//! registration would record it) and their authentication at the token endpoint with
//! `private_key_jwt` (RFC 7523, a signed client assertion) or `tls_client_auth` (RFC 8705, the
//! TLS client certificate's subject).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::certs::{PublicKey, TppCertificate};
use super::dn::Dn;
use super::{CLOCK_SKEW, TppGate, jose, wall_now};

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    PrivateKeyJwt,
    TlsClientAuth,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
        }
    }
}

/// A signing certificate as registered: its `kid` and PEM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningCertificate {
    pub kid: String,
    pub pem: String,
}

/// `POST /admin/banks/{bank}/clients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UkClientRegistration {
    pub client_id: String,
    pub token_endpoint_auth_method: TokenAuthMethod,
    /// `tls_client_auth`: the subject DN the TLS client certificate must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// The keys of `x-jws-signature`, request objects and client assertions (OBSeal/QSealC).
    pub signing_certificates: Vec<SigningCertificate>,
    /// `http://openbanking.org.uk/iss` must be `{org_id}/{software_statement_id}`.
    pub org_id: String,
    pub software_statement_id: String,
    /// If not empty, the only `redirect_uri`s allowed.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// A registered signing key.
#[derive(Debug, Clone)]
pub struct RegisteredKey {
    pub kid: String,
    pub cert: TppCertificate,
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct UkClient {
    pub client_id: String,
    pub method: TokenAuthMethod,
    pub tls_subject: Option<Dn>,
    pub keys: Vec<RegisteredKey>,
    pub org_id: String,
    pub software_statement_id: String,
    pub redirect_uris: Vec<String>,
    pub registration: UkClientRegistration,
}

impl UkClient {
    /// Checks a registration: the certificates chain to the TPP CA and are valid now, the keys
    /// are RSA (2048 bits or more) or P-256, `tls_client_auth` names a subject.
    pub fn from_registration(
        gate: &TppGate,
        registration: UkClientRegistration,
    ) -> Result<Self, String> {
        let client_id = registration.client_id.trim();
        if client_id.is_empty() || client_id.len() > 128 {
            return Err("client_id must be 1..128 characters".into());
        }
        let tls_subject = match (
            registration.token_endpoint_auth_method,
            registration.tls_client_auth_subject_dn.as_deref(),
        ) {
            (_, Some(text)) => Some(
                Dn::parse(text)
                    .ok_or_else(|| format!("tls_client_auth_subject_dn `{text}` is not a DN"))?,
            ),
            (TokenAuthMethod::TlsClientAuth, None) => {
                return Err("tls_client_auth needs tls_client_auth_subject_dn".into());
            }
            (TokenAuthMethod::PrivateKeyJwt, None) => None,
        };
        if registration.signing_certificates.is_empty() {
            return Err(
                "at least one signing certificate is needed (x-jws-signature, request objects)"
                    .into(),
            );
        }
        let mut keys = Vec::new();
        for signing in &registration.signing_certificates {
            if signing.kid.is_empty() || keys.iter().any(|k: &RegisteredKey| k.kid == signing.kid) {
                return Err("each signing certificate needs its own non-empty kid".into());
            }
            let der = CertificateDer::from_pem_slice(signing.pem.as_bytes())
                .map_err(|_| format!("signing certificate `{}` is not PEM", signing.kid))?;
            let cert = gate
                .judge_seal(&der)
                .map_err(|e| format!("signing certificate `{}`: {e}", signing.kid))?;
            match cert.key {
                PublicKey::Rsa { bits, .. } if bits >= 2048 => {}
                PublicKey::EcP256(_) => {}
                _ => {
                    return Err(format!(
                        "signing certificate `{}`: the key must be RSA (2048+ bits) or P-256",
                        signing.kid
                    ));
                }
            }
            keys.push(RegisteredKey {
                kid: signing.kid.clone(),
                cert,
            });
        }
        if registration.org_id.is_empty() || registration.software_statement_id.is_empty() {
            return Err("org_id and software_statement_id are required".into());
        }
        for uri in &registration.redirect_uris {
            if !url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http") {
                return Err(format!(
                    "redirect_uri `{uri}` is not an absolute http(s) URL"
                ));
            }
        }
        Ok(Self {
            client_id: client_id.to_string(),
            method: registration.token_endpoint_auth_method,
            tls_subject,
            keys,
            org_id: registration.org_id.clone(),
            software_statement_id: registration.software_statement_id.clone(),
            redirect_uris: registration.redirect_uris.clone(),
            registration,
        })
    }

    /// The key a JOSE header names: by `kid`, or the only one when there is no `kid`.
    pub fn key_for(&self, header: &Map<String, Value>) -> Option<&RegisteredKey> {
        match header.get("kid") {
            Some(Value::String(kid)) => self.keys.iter().find(|k| &k.kid == kid),
            None if self.keys.len() == 1 => self.keys.first(),
            _ => None,
        }
    }

    /// `http://openbanking.org.uk/iss` of this client's signatures.
    pub fn jws_issuer(&self) -> String {
        format!("{}/{}", self.org_id, self.software_statement_id)
    }

    /// Whether a TLS certificate is of this client's organisation (by `organizationIdentifier`
    /// when both certificates have one).
    pub fn same_organisation(&self, tls: &TppCertificate) -> bool {
        let Some(theirs) = tls.organization_identifier() else {
            return true;
        };
        self.keys.iter().all(|k| {
            k.cert
                .organization_identifier()
                .is_none_or(|ours| ours.eq_ignore_ascii_case(theirs))
        })
    }

    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.is_empty() || self.redirect_uris.iter().any(|r| r == uri)
    }
}

/// `client_assertion_type` of RFC 7523 §2.2.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn audience_has(claims: &Map<String, Value>, accepted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => accepted.contains(&aud.as_str()),
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| accepted.contains(&a))),
        _ => false,
    }
}

fn number(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

/// Authenticates the client of a token request; `Err` is the `error_description` of a
/// `401 invalid_client`. `issuer` and `token_url` are the audiences an assertion may name.
pub fn authenticate(
    gate: &TppGate,
    bank_id: &str,
    form: &[(String, String)],
    basic_auth: bool,
    tls: &TppCertificate,
    audiences: &[&str],
) -> Result<UkClient, String> {
    if basic_auth || field(form, "client_secret").is_some() {
        return Err(
            "client secrets are not accepted: authenticate with private_key_jwt or tls_client_auth"
                .into(),
        );
    }
    if let Some(assertion) = field(form, "client_assertion") {
        if field(form, "client_assertion_type") != Some(JWT_BEARER) {
            return Err(format!("client_assertion_type must be {JWT_BEARER}"));
        }
        return private_key_jwt(gate, bank_id, form, assertion, tls, audiences);
    }
    let client_id = field(form, "client_id").ok_or("no client authentication: send a client_assertion (private_key_jwt) or client_id over the registered TLS certificate (tls_client_auth)")?;
    let client = gate
        .client(bank_id, client_id)
        .ok_or_else(|| format!("unknown client `{client_id}`"))?;
    if client.method != TokenAuthMethod::TlsClientAuth {
        return Err(format!(
            "client `{client_id}` authenticates with {}",
            client.method.as_str()
        ));
    }
    let expected = client.tls_subject.as_ref().ok_or("no subject registered")?;
    if !tls.subject.matches(expected) {
        return Err(format!(
            "the TLS client certificate's subject `{}` is not the one registered for `{client_id}`",
            tls.subject.to_rfc4514()
        ));
    }
    Ok(client)
}

fn private_key_jwt(
    gate: &TppGate,
    bank_id: &str,
    form: &[(String, String)],
    assertion: &str,
    tls: &TppCertificate,
    audiences: &[&str],
) -> Result<UkClient, String> {
    let jws = jose::parse_compact(assertion).ok_or("client_assertion is not a compact JWS")?;
    let claims = jose::claims(&jws).ok_or("client_assertion's payload is not a JSON object")?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    if iss.is_empty() || iss != sub {
        return Err("client_assertion: iss and sub must both be the client_id".into());
    }
    if field(form, "client_id").is_some_and(|id| id != iss) {
        return Err("client_id differs from the client_assertion's iss".into());
    }
    let client = gate
        .client(bank_id, iss)
        .ok_or_else(|| format!("unknown client `{iss}`"))?;
    if client.method != TokenAuthMethod::PrivateKeyJwt {
        return Err(format!(
            "client `{iss}` authenticates with {}",
            client.method.as_str()
        ));
    }
    let alg = jws.header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !jose::TPP_ALGORITHMS.contains(&alg) {
        return Err(format!(
            "client_assertion: alg `{alg}` is not PS256 or ES256"
        ));
    }
    let key = client
        .key_for(&jws.header)
        .ok_or("client_assertion: kid names no registered key")?;
    let input = format!("{}.{}", jws.header_b64, jws.payload_b64);
    if !jose::verify(alg, &key.cert.key, input.as_bytes(), &jws.signature) {
        return Err("client_assertion: the signature does not verify".into());
    }
    let now = wall_now();
    if key.cert.not_after < now {
        return Err("client_assertion: the signing certificate has expired".into());
    }
    if !audience_has(&claims, audiences) {
        return Err(format!(
            "client_assertion: aud must be the token endpoint or the issuer ({})",
            audiences.join(", ")
        ));
    }
    let exp = number(&claims, "exp").ok_or("client_assertion: exp is required")?;
    if exp <= now - CLOCK_SKEW {
        return Err("client_assertion has expired".into());
    }
    if number(&claims, "iat").is_some_and(|iat| iat > now + CLOCK_SKEW)
        || number(&claims, "nbf").is_some_and(|nbf| nbf > now + CLOCK_SKEW)
    {
        return Err("client_assertion is not valid yet (iat or nbf in the future)".into());
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or("client_assertion: jti is required")?;
    if !client.same_organisation(tls) {
        return Err(
            "the TLS client certificate belongs to another organisation than this client".into(),
        );
    }
    let key = format!("assertion {bank_id} {iss} {}", URL_SAFE_NO_PAD.encode(jti));
    if !gate.first_use(key, exp) {
        return Err("client_assertion replayed: its jti was used before".into());
    }
    Ok(client)
}
