//! OAuth2 and OpenID Connect at a UK bank: discovery, the hub's own client-credentials token
//! (cached), the user's tokens (code exchange with PKCE, refresh), and the signed request
//! object that carries the consent id to the bank's authorisation page.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kontor_domain::time::Timestamp;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use url::Url;

use super::UkOpenBanking;
use super::wire::{Discovery, TokenResponse};
use crate::http::{Body, Outgoing, Retry};
use crate::support::urls::endpoint;
use crate::{BankError, ConsentSession};

/// A token is renewed this long before the bank would refuse it, so that a request sent just
/// before expiry does not arrive just after it.
const EXPIRY_MARGIN_SECONDS: i64 = 30;

/// Signs the OpenID Connect request object (a JWT) sent to the bank's authorisation endpoint.
/// Production banks require a signature with the key registered for the hub's client;
/// [`Unsigned`] is what a sandbox accepts.
pub trait RequestObjectSigner: Send + Sync + std::fmt::Debug {
    /// The JWS `alg` header value (`PS256` for Open Banking; `none` when unsigned).
    fn algorithm(&self) -> &str;
    /// The JWS `kid` header value.
    fn key_id(&self) -> Option<&str> {
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

/// The hub's client-credentials token, kept until shortly before it expires.
pub(super) struct CachedToken {
    token: String,
    renew_at: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken").finish_non_exhaustive()
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

/// RFC 7636 S256: the challenge is the verifier's SHA-256, base64url.
pub(super) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined.
fn basic_auth(client_id: &str, secret: &str) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

pub(super) fn bearer(token: &str) -> Result<HeaderValue, BankError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| BankError::protocol("the bank issued a token that is not a header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

impl UkOpenBanking {
    /// The bank's OpenID provider metadata, read once.
    pub(super) async fn discovery(&self) -> Result<&Discovery, BankError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = endpoint(
                    &self.profile.base_url,
                    &[".well-known", "openid-configuration"],
                )?;
                let mut out = Outgoing::get(url, "/.well-known/openid-configuration");
                out.headers
                    .insert(ACCEPT, HeaderValue::from_static("application/json"));
                let found: Discovery = self.oauth.send(out).await?.json("openid configuration")?;
                for endpoint in [&found.authorization_endpoint, &found.token_endpoint] {
                    match Url::parse(endpoint) {
                        Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {}
                        _ => {
                            return Err(BankError::protocol(
                                "openid configuration has a malformed endpoint",
                            ));
                        }
                    }
                }
                Ok(found)
            })
            .await
    }

    pub(super) fn client_credentials(&self) -> Result<(&str, &str), BankError> {
        match (&self.profile.client_id, &self.profile.client_secret) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(BankError::protocol(
                "the bank's profile has no client id and secret for the hub",
            )),
        }
    }

    /// A form POST to the token endpoint with the hub's client authentication.
    async fn token_request(
        &self,
        form: &[(&str, &str)],
        retry: Retry,
    ) -> Result<TokenResponse, BankError> {
        let discovery = self.discovery().await?;
        let url = Url::parse(&discovery.token_endpoint)
            .map_err(|_| BankError::protocol("malformed token endpoint"))?;
        let (client_id, secret) = self.client_credentials()?;
        let mut out = Outgoing::new(Method::POST, url, "/token", retry);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, basic_auth(client_id, secret));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        out.headers = headers;
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        out.body = Some(Body::Form(encoded));
        self.oauth.send(out).await?.json("token response")
    }

    /// The hub's own token (scope `accounts`), for consent resources.
    pub(super) async fn client_token(&self) -> Result<String, BankError> {
        let mut cached = self.client_token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.token.clone());
        }
        // Another token for the same client changes nothing at the bank: safe to retry.
        let answer = self
            .token_request(
                &[("grant_type", "client_credentials"), ("scope", "accounts")],
                Retry::Safe,
            )
            .await?;
        let lifetime = answer.expires_in.unwrap_or(300);
        let usable = u64::try_from(lifetime.saturating_sub(EXPIRY_MARGIN_SECONDS)).unwrap_or(0);
        *cached = Some(CachedToken {
            token: answer.access_token.clone(),
            renew_at: Instant::now() + Duration::from_secs(usable),
        });
        Ok(answer.access_token)
    }

    /// Forgets the cached client token, after the bank refused it (it restarted, or its clock
    /// ran ahead of ours).
    pub(super) async fn drop_client_token(&self) {
        *self.client_token.lock().await = None;
    }

    /// Exchanges the authorisation code for the user's tokens. Not repeated on failure: a code
    /// is single-use, so a second try could only fail.
    pub(super) async fn exchange_code(
        &self,
        session: &mut ConsentSession,
        code: &str,
    ) -> Result<(), BankError> {
        let verifier = session
            .pkce_verifier
            .clone()
            .ok_or_else(|| BankError::protocol("the session has no PKCE verifier"))?;
        let redirect_uri = session
            .redirect_uri
            .clone()
            .ok_or_else(|| BankError::protocol("the session has no redirect URI"))?;
        let answer = self
            .token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &redirect_uri),
                    ("code_verifier", &verifier),
                ],
                Retry::Never,
            )
            .await?;
        store(session, answer);
        session.pkce_verifier = None;
        Ok(())
    }

    /// A new access token from the refresh token; the session changes and must be saved.
    pub(super) async fn refresh(&self, session: &mut ConsentSession) -> Result<(), BankError> {
        let refresh_token = session
            .refresh_token
            .clone()
            .ok_or(BankError::ConsentInvalid {
                code: "no_refresh_token".to_owned(),
            })?;
        let answer = self
            .token_request(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh_token),
                ],
                Retry::Safe,
            )
            .await?;
        store(session, answer);
        tracing::debug!(bank.id = %self.profile.id, "refreshed the user's access token");
        Ok(())
    }
}

/// Whether the session's access token is missing or about to expire.
pub(super) fn needs_refresh(session: &ConsentSession) -> bool {
    match (&session.access_token, session.access_token_expires_at) {
        (None, _) => true,
        (Some(_), Some(expires_at)) => {
            Timestamp::now().plus_seconds(EXPIRY_MARGIN_SECONDS) >= expires_at
        }
        (Some(_), None) => false,
    }
}

fn store(session: &mut ConsentSession, answer: TokenResponse) {
    session.access_token = Some(answer.access_token);
    session.access_token_expires_at = answer
        .expires_in
        .map(|seconds| Timestamp::now().plus_seconds(seconds));
    // A bank that rotates refresh tokens sends a new one; one that does not keeps the old.
    if let Some(refresh) = answer.refresh_token {
        session.refresh_token = Some(refresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

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
    fn basic_auth_form_encodes_credentials() {
        let value = basic_auth("tpp id", "s3:cr&t");
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "tpp+id:s3%3Acr%26t");
        assert!(value.is_sensitive());
    }

    #[test]
    fn tokens_are_refreshed_shortly_before_expiry() {
        let mut session = ConsentSession::default();
        assert!(needs_refresh(&session));
        session.access_token = Some("t".into());
        assert!(!needs_refresh(&session));
        session.access_token_expires_at = Some(Timestamp::now().plus_seconds(10));
        assert!(needs_refresh(&session));
        session.access_token_expires_at = Some(Timestamp::now().plus_seconds(3_600));
        assert!(!needs_refresh(&session));
    }
}
