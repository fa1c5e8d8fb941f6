//! Certificate-bound clients and tokens (RFC 8705). Which client certificate a request
//! presented: the one of its own TLS connection when the hub terminates TLS, or — only when the
//! connection comes from one of `trusted_proxies` and `client_certificate_header` is configured
//! — the one an ingress that terminated mutual TLS forwards in that header. From anyone else the
//! header is ignored, so a client cannot claim a certificate it does not hold.
//!
//! The forwarded header holds the leaf certificate either as RFC 9440's `Client-Cert` (a
//! structured-field byte sequence, `:<base64 DER>:`) or URL-encoded PEM (nginx's
//! `$ssl_client_escaped_cert`). A header that holds neither counts as no certificate, and is
//! logged, so a bound client is refused rather than let through.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kontor_domain::CertificateThumbprint;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::auth::Claims;
use crate::error::{ApiError, ErrorCode};
use crate::server::tls::ClientCertificate;
use crate::state::ApiSettings;

const CHALLENGE_INVALID: &str = "Bearer realm=\"kontor\", error=\"invalid_token\"";

/// The thumbprint of the client certificate the request presented, if any.
pub(crate) fn presented(
    settings: &ApiSettings,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Option<CertificateThumbprint> {
    if let Some(header) = &settings.client_certificate_header {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        if peer.is_some_and(|peer| settings.is_trusted_proxy(peer.ip().to_canonical())) {
            // The proxy's own certificate, if it presented one, is not the client's.
            let value = headers.get(header)?;
            let parsed = value.to_str().ok().and_then(forwarded);
            if parsed.is_none() {
                tracing::warn!(
                    header = %header,
                    "a trusted proxy forwarded a client certificate header that holds no \
                     certificate; treating the request as presenting none"
                );
            }
            return parsed;
        }
    }
    extensions
        .get::<ClientCertificate>()
        .map(|certificate| CertificateThumbprint::from_bytes(certificate.0))
}

/// The thumbprint of a forwarded certificate: RFC 9440 (`:base64:`) or URL-encoded PEM.
fn forwarded(value: &str) -> Option<CertificateThumbprint> {
    let value = value.trim();
    let der = if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
        STANDARD.decode(inner).ok()?
    } else {
        // `+` is base64 here, never an encoded space.
        let pem = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()?;
        let pem = pem.trim();
        if !pem.starts_with("-----BEGIN CERTIFICATE-----") {
            return None;
        }
        CertificateDer::from_pem_slice(pem.as_bytes())
            .ok()?
            .as_ref()
            .to_vec()
    };
    // Only a certificate counts, not whatever bytes the header happens to hold.
    x509_parser::parse_x509_certificate(&der)
        .ok()
        .filter(|(rest, _)| rest.is_empty())?;
    Some(CertificateThumbprint::of_der(&der))
}

/// Why a request's certificate does not go with its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Missing,
    Mismatch,
    Unbound,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Mismatch => "mismatch",
            Refusal::Unbound => "unbound_token",
        }
    }
}

fn check(
    token: Option<CertificateThumbprint>,
    bound: &[CertificateThumbprint],
    presented: Option<CertificateThumbprint>,
) -> Result<(), Refusal> {
    match token {
        Some(token) => match presented {
            None => Err(Refusal::Missing),
            // A certificate unbound from the client takes its tokens with it.
            Some(presented) if presented == token && bound.contains(&token) => Ok(()),
            Some(_) => Err(Refusal::Mismatch),
        },
        None if bound.is_empty() => Ok(()),
        // Issued before the client was bound (or by a node of an earlier release).
        None => Err(Refusal::Unbound),
    }
}

/// RFC 8705 §3 at the resource: a bound token is good only with its certificate, and only while
/// that certificate is still bound to its client; a client that is bound takes only bound tokens.
pub(crate) fn confirm(
    claims: &Claims,
    bound: &[CertificateThumbprint],
    presented: Option<CertificateThumbprint>,
) -> Result<(), ApiError> {
    let Err(refusal) = check(claims.certificate, bound, presented) else {
        return Ok(());
    };
    tracing::info!(
        client.id = %claims.client,
        reason = refusal.as_str(),
        "request refused: client certificate does not go with the token"
    );
    metrics::counter!(
        "kontor_auth_certificate_refusals_total",
        "at" => "api",
        "reason" => refusal.as_str()
    )
    .increment(1);
    let (code, message) = match refusal {
        Refusal::Missing => (
            ErrorCode::ClientCertificateRequired,
            "the token is bound to a client certificate: present it over mutual TLS",
        ),
        Refusal::Mismatch => (
            ErrorCode::ClientCertificateMismatch,
            "the client certificate is not the one the token is bound to, or is no longer \
             bound to the client",
        ),
        Refusal::Unbound => (
            ErrorCode::TokenNotBound,
            "the client is bound to a certificate but the token is not; request a new token \
             over mutual TLS",
        ),
    };
    Err(ApiError::new(code, message).with_challenge(CHALLENGE_INVALID))
}

/// At the token endpoint: which certificate the new token is bound to, for a client bound to
/// `bound`; `Err` with the reason when the request cannot have one.
pub(crate) fn for_token(
    bound: &[CertificateThumbprint],
    presented: Option<CertificateThumbprint>,
) -> Result<Option<CertificateThumbprint>, &'static str> {
    if bound.is_empty() {
        return Ok(None);
    }
    let refusal = match presented {
        Some(presented) if bound.contains(&presented) => return Ok(Some(presented)),
        Some(_) => Refusal::Mismatch,
        None => Refusal::Missing,
    };
    metrics::counter!(
        "kontor_auth_certificate_refusals_total",
        "at" => "token",
        "reason" => refusal.as_str()
    )
    .increment(1);
    Err(match refusal {
        Refusal::Missing => {
            "this client is bound to a certificate: request tokens over mutual TLS with it"
        }
        _ => "the client certificate presented is not one this client is bound to",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seed: &[u8]) -> CertificateThumbprint {
        CertificateThumbprint::of_der(seed)
    }

    #[test]
    fn bound_tokens_need_their_certificate_while_it_is_bound() {
        let (a, b) = (t(b"a"), t(b"b"));
        assert_eq!(check(Some(a), &[a, b], Some(a)), Ok(()));
        assert_eq!(check(Some(a), &[a], None), Err(Refusal::Missing));
        assert_eq!(check(Some(a), &[a, b], Some(b)), Err(Refusal::Mismatch));
        assert_eq!(check(Some(a), &[b], Some(a)), Err(Refusal::Mismatch));
        assert_eq!(check(Some(a), &[], Some(a)), Err(Refusal::Mismatch));
        assert_eq!(check(None, &[a], Some(a)), Err(Refusal::Unbound));
        assert_eq!(check(None, &[], None), Ok(()));
        assert_eq!(check(None, &[], Some(a)), Ok(()));
    }

    #[test]
    fn token_requests_of_bound_clients_need_a_bound_certificate() {
        let (a, b) = (t(b"a"), t(b"b"));
        assert_eq!(for_token(&[], None), Ok(None));
        assert_eq!(
            for_token(&[], Some(a)),
            Ok(None),
            "unbound clients stay unbound"
        );
        assert_eq!(for_token(&[a, b], Some(b)), Ok(Some(b)));
        assert!(for_token(&[a], None).is_err());
        assert!(for_token(&[a], Some(b)).is_err());
    }

    #[test]
    fn forwarded_certificates_are_parsed_in_both_forms() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["tenant.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let expected = CertificateThumbprint::of_der(cert.der());
        let rfc9440 = format!(":{}:", STANDARD.encode(cert.der()));
        assert_eq!(forwarded(&rfc9440), Some(expected));
        let escaped =
            percent_encoding::utf8_percent_encode(&cert.pem(), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(forwarded(&escaped), Some(expected));
        for bad in [
            "",
            "::",
            ":bm90IGEgY2VydGlmaWNhdGU=:",
            ":!!!:",
            "-----BEGIN%20CERTIFICATE-----%0Agarbage%0A-----END%20CERTIFICATE-----",
            "%ff%fe",
            &escaped.replace("CERTIFICATE", "PRIVATE%20KEY"),
        ] {
            assert_eq!(forwarded(bad), None, "{bad:?}");
        }
    }
}
