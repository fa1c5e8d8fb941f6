//! OAuth2 and OpenID Connect at a UK bank: discovery, the hub's own client-credentials tokens
//! (cached, one per scope), the user's tokens (code exchange with PKCE, refresh), and the
//! authorisation URL whose signed request object carries the consent id to the bank.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kontor_domain::time::Timestamp;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::UkOpenBanking;
use super::client_auth::{IdTokenCheck, TokenAuth};
use super::signing::request_object;
use super::wire::{Discovery, TokenResponse};
use crate::http::{Body, Incoming, Outgoing, Retry};
use crate::support::ids::random_token;
use crate::support::urls::endpoint;
use crate::{BankError, ConsentSession, PaymentSession};

/// The client-credentials scope for account-access consents.
pub(super) const ACCOUNTS: &str = "accounts";
/// The client-credentials scope for payment consents and payment reads.
pub(super) const PAYMENTS: &str = "payments";

/// What the user is sent to the bank to authorise: the consent (`intent_id`) and the OAuth2
/// parameters around it.
pub(super) struct Authorisation<'a> {
    pub redirect_uri: &'a Url,
    pub state: &'a str,
    /// `openid accounts` or `openid payments`.
    pub scope: &'static str,
    /// The consent id, carried as `openbanking_intent_id`.
    pub intent_id: &'a str,
    pub verifier: &'a str,
    pub nonce: &'a str,
}

/// A token is renewed this long before the bank would refuse it, so that a request sent just
/// before expiry does not arrive just after it.
const EXPIRY_MARGIN_SECONDS: i64 = 30;

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

    /// The OpenID Connect authorisation request: the consent id travels in the request object's
    /// `openbanking_intent_id` claim; the plain parameters repeat what the object says, as
    /// OpenID Connect requires of `response_type`, `client_id` and `scope`.
    pub(super) async fn authorisation_url(
        &self,
        request: &Authorisation<'_>,
    ) -> Result<Url, BankError> {
        let discovery = self.discovery().await?;
        let client_id = self.client_id()?;
        let challenge = pkce_challenge(request.verifier);
        let redirect_uri = request.redirect_uri.as_str();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let intent = serde_json::json!({ "value": request.intent_id, "essential": true });
        let claims = serde_json::json!({
            // FAPI 1.0 Advanced §5.2.2: a signed object used once (`jti`), valid at most an
            // hour (`nbf` to `exp`).
            "jti": random_token(24),
            "iss": client_id,
            "aud": discovery.issuer.as_deref().unwrap_or(&discovery.authorization_endpoint),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": request.scope,
            "state": request.state,
            "nonce": request.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "claims": {
                "userinfo": { "openbanking_intent_id": intent },
                "id_token": {
                    "openbanking_intent_id": intent,
                    "acr": { "essential": true, "values": ["urn:openbanking:psd2:sca"] },
                },
            },
        });
        let jwt = request_object(self.signer.as_ref(), &claims)?;
        let mut url = Url::parse(&discovery.authorization_endpoint)
            .map_err(|_| BankError::protocol("malformed authorization endpoint"))?;
        url.query_pairs_mut().extend_pairs([
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", request.scope),
            ("state", request.state),
            ("nonce", request.nonce),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("request", jwt.as_str()),
        ]);
        Ok(url)
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
        let mut out = Outgoing::new(Method::POST, url, "/token", retry);
        let mut headers = HeaderMap::new();
        if self.token_auth == TokenAuth::ClientSecretBasic {
            let (client_id, secret) = self.client_credentials()?;
            headers.insert(AUTHORIZATION, basic_auth(client_id, secret));
        }
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        out.headers = headers;
        let auth = self.client_auth(&discovery.token_endpoint)?;
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // A retry carries a new client assertion: the bank has seen the first one's `jti`.
        let encode = move || -> Result<Body, BankError> {
            let fields = auth.form()?;
            Ok(Body::Form(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish(),
            ))
        };
        out.body = Some(encode()?);
        out.fresh_body = Some(Box::new(encode));
        self.oauth.send(out).await?.json("token response")
    }

    /// The hub's own token for `scope` (`accounts` for account-access consents, `payments` for
    /// payment consents and payment reads). One token per scope, not one for both: a bank that
    /// registered the hub for account information only refuses a token request naming
    /// `payments`, and that must not break account information.
    pub(super) async fn client_token(&self, scope: &'static str) -> Result<String, BankError> {
        let mut cached = self.client_tokens.lock().await;
        if let Some(token) = cached.get(scope)
            && Instant::now() < token.renew_at
        {
            return Ok(token.token.clone());
        }
        // Another token for the same client changes nothing at the bank: safe to retry.
        let answer = self
            .token_request(
                &[("grant_type", "client_credentials"), ("scope", scope)],
                Retry::Safe,
            )
            .await?;
        let lifetime = answer.expires_in.unwrap_or(300);
        let usable = u64::try_from(lifetime.saturating_sub(EXPIRY_MARGIN_SECONDS)).unwrap_or(0);
        cached.insert(
            scope,
            CachedToken {
                token: answer.access_token.clone(),
                renew_at: Instant::now() + Duration::from_secs(usable),
            },
        );
        Ok(answer.access_token)
    }

    /// Forgets the cached client token for `scope`, after the bank refused it (it restarted, or
    /// its clock ran ahead of ours).
    pub(super) async fn drop_client_token(&self, scope: &'static str) {
        self.client_tokens.lock().await.remove(scope);
    }

    /// Sends a request made with the hub's token for `scope`; a 401 means the bank no longer
    /// takes the cached token (nothing was done), so one more try with a new token is safe even
    /// for a POST.
    pub(super) async fn with_client_token(
        &self,
        scope: &'static str,
        build: impl Fn(&str) -> Result<Outgoing, BankError>,
    ) -> Result<Incoming, BankError> {
        let token = self.client_token(scope).await?;
        match self.transport.send(build(&token)?).await {
            Err(BankError::Rejected { status: 401, .. }) => {
                self.drop_client_token(scope).await;
                let token = self.client_token(scope).await?;
                self.transport.send(build(&token)?).await
            }
            other => other,
        }
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
        let check = IdTokenCheck {
            nonce: session.extra.get("nonce").map(String::as_str),
            state: session.extra.get("state").map(String::as_str),
            intent_id: Some(&session.consent_id),
        };
        let answer = self
            .code_grant(code, &verifier, &redirect_uri, check)
            .await?;
        store(session, answer);
        session.pkce_verifier = None;
        Ok(())
    }

    /// RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5), sent once. Under FAPI the
    /// answer's `id_token` is checked before its tokens are used.
    pub(super) async fn code_grant(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        check: IdTokenCheck<'_>,
    ) -> Result<TokenResponse, BankError> {
        let answer = self
            .token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                ],
                Retry::Never,
            )
            .await?;
        self.check_id_token(answer.id_token.as_deref(), code, check)
            .await?;
        Ok(answer)
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

    /// A new access token for a payment from the user's refresh token; the session changes and
    /// must be saved.
    pub(super) async fn refresh_user_token(
        &self,
        session: &mut PaymentSession,
    ) -> Result<(), BankError> {
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
        session.access_token = Some(answer.access_token);
        if let Some(refresh) = answer.refresh_token {
            session.refresh_token = Some(refresh);
        }
        tracing::debug!(bank.id = %self.profile.id, "refreshed the user's payment token");
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
