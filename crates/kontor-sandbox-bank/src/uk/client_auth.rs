//! Who is asking the token endpoint: outside strict mode a client secret (`client_secret_basic`
//! or `client_secret_post`); in strict mode a TLS client certificate of the TPP CA plus
//! `private_key_jwt` or `tls_client_auth` as the client is registered, and PSD2 roles that cover
//! the scopes asked for (`accounts` needs `PSP_AI`, `payments` `PSP_PI`).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::oauth::oauth_error;
use crate::state::Bank;

/// A refused token request: an RFC 6749 §5.2 error.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl Refusal {
    pub fn into_response(self) -> Response {
        oauth_error(self.status, self.error, &self.description)
    }
}
use crate::tpp::{PeerCertificates, PspRole, clients};
use crate::web::extract::field;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// Strict mode: the thumbprint tokens are bound to, and the certificate's roles.
    pub binding: Option<(String, Vec<PspRole>)>,
}

impl Caller {
    /// Strict mode: refuses scopes the certificate's PSD2 roles do not cover.
    pub fn check_roles<'a>(
        &self,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Refusal> {
        let Some((_, roles)) = &self.binding else {
            return Ok(());
        };
        for scope in scopes {
            let needed = match scope {
                "accounts" => PspRole::Ai,
                "payments" => PspRole::Pi,
                _ => continue,
            };
            if !roles.contains(&needed) {
                return Err(Refusal {
                    status: StatusCode::BAD_REQUEST,
                    error: "unauthorized_client",
                    description: format!(
                        "the TLS client certificate lacks the PSD2 role {} needed for the scope `{scope}`",
                        needed.name()
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn cnf(&self) -> Option<String> {
        self.binding
            .as_ref()
            .map(|(thumbprint, _)| thumbprint.clone())
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let pair = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    pair.split_once(':')
        .map(|(i, s)| (url_decode(i), url_decode(s)))
}

fn url_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn invalid_client(description: &str) -> Refusal {
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: description.to_string(),
    }
}

/// Authenticates the token request's client.
pub fn authenticate(
    bank: &Bank,
    headers: &HeaderMap,
    form: &[(String, String)],
    peer: Option<&PeerCertificates>,
) -> Result<Caller, Refusal> {
    let Some(gate) = &bank.tpp else {
        let (id, secret) = basic_credentials(headers)
            .or_else(|| {
                Some((
                    field(form, "client_id")?.to_string(),
                    field(form, "client_secret")?.to_string(),
                ))
            })
            .ok_or_else(|| invalid_client("unknown client or wrong secret"))?;
        if id != bank.config.client_id || secret != bank.config.client_secret {
            return Err(invalid_client("unknown client or wrong secret"));
        }
        return Ok(Caller {
            client_id: id,
            binding: None,
        });
    };
    let tls = gate
        .judge_tls(peer)
        .map_err(|problem| invalid_client(&format!("TLS client certificate: {problem}")))?;
    let token_url = bank.url("/oauth2/token");
    let audiences = [token_url.as_str(), bank.base_url.as_str()];
    let has_basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")));
    match clients::authenticate(gate, bank.id(), form, has_basic, &tls, &audiences) {
        Ok(client) => Ok(Caller {
            client_id: client.client_id,
            binding: Some((tls.thumbprint(), tls.roles().to_vec())),
        }),
        Err(description) => {
            tracing::info!(bank = bank.id(), %description, "token request refused");
            Err(invalid_client(&description))
        }
    }
}
