//! How the hub proves who it is at a UK bank's token endpoint, and what it checks of the
//! bank's answer: `client_secret_basic` (sandboxes only), `private_key_jwt` (RFC 7523: an
//! assertion signed PS256 with the seal key, a fresh `jti`, a short `exp`, `aud` the token
//! endpoint) or `tls_client_auth` (RFC 8705: the client certificate on the connection, the
//! `client_id` in the form); and the `id_token` against the bank's JWKS, fetched once and
//! again when the bank signs with a key it did not publish before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, HeaderValue};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use super::UkOpenBanking;
use super::id_token::{self, Expected, Jwks};
use super::signing::{RequestObjectSigner, request_object};
use crate::BankError;
use crate::http::Outgoing;
use crate::support::ids::random_token;

/// Token endpoint authentication (OpenID Connect Core §9, RFC 8705).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// The client secret in `Authorization: Basic` (not allowed under FAPI; sandboxes).
    #[default]
    ClientSecretBasic,
    /// A JWT signed with the hub's seal key.
    PrivateKeyJwt,
    /// The TLS client certificate of the connection.
    TlsClientAuth,
}

pub(super) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is good for.
const ASSERTION_SECONDS: i64 = 300;
/// A JWKS is read again after this long, or sooner when it lacks the key an id_token names
/// (but not more than once in [`JWKS_MIN_REFETCH`]).
const JWKS_TTL: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(super) struct CachedJwks {
    keys: Arc<Jwks>,
    fetched: Instant,
}

/// The hub's client authentication at one token endpoint.
#[derive(Debug, Clone)]
pub(super) struct ClientAuth {
    token_auth: TokenAuth,
    client_id: String,
    token_endpoint: String,
    signer: Arc<dyn RequestObjectSigner>,
}

impl ClientAuth {
    /// The form fields that authenticate the client (none for `client_secret_basic`, which
    /// goes in `Authorization`). Each call makes a new `private_key_jwt` assertion — a new
    /// `jti`, `iat` and `exp` — since a bank refuses an assertion it has seen (RFC 7523 §3,
    /// FAPI 1.0 Advanced): a retried token request must not send the one before.
    pub(super) fn form(&self) -> Result<Vec<(&'static str, String)>, BankError> {
        let client_id = self.client_id.clone();
        match self.token_auth {
            TokenAuth::ClientSecretBasic => Ok(Vec::new()),
            TokenAuth::TlsClientAuth => Ok(vec![("client_id", client_id)]),
            TokenAuth::PrivateKeyJwt => {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                let claims = serde_json::json!({
                    "iss": client_id,
                    "sub": client_id,
                    "aud": self.token_endpoint,
                    "jti": random_token(24),
                    "iat": now,
                    "exp": now + ASSERTION_SECONDS,
                });
                let assertion = request_object(self.signer.as_ref(), &claims)?;
                Ok(vec![
                    ("client_id", client_id),
                    ("client_assertion_type", ASSERTION_TYPE.to_owned()),
                    ("client_assertion", assertion),
                ])
            }
        }
    }
}

/// What the `id_token` of one code exchange must say, besides what the bank's metadata says.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdTokenCheck<'a> {
    pub nonce: Option<&'a str>,
    pub state: Option<&'a str>,
    pub intent_id: Option<&'a str>,
}

impl UkOpenBanking {
    pub(super) fn client_id(&self) -> Result<&str, BankError> {
        self.profile
            .client_id
            .as_deref()
            .ok_or_else(|| BankError::protocol("the bank's profile has no client id for the hub"))
    }

    pub(super) fn client_credentials(&self) -> Result<(&str, &str), BankError> {
        match (&self.profile.client_id, &self.profile.client_secret) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(BankError::protocol(
                "the bank's profile has no client id and secret for the hub",
            )),
        }
    }

    /// How the hub authenticates at `token_endpoint`, to make the form fields with (again for
    /// each attempt: see [`ClientAuth::form`]).
    pub(super) fn client_auth(&self, token_endpoint: &str) -> Result<ClientAuth, BankError> {
        let client_id = self.client_id()?.to_owned();
        if self.token_auth == TokenAuth::PrivateKeyJwt && self.signer.algorithm() != "PS256" {
            return Err(BankError::protocol(
                "private_key_jwt needs the hub's seal key (configure signing)",
            ));
        }
        Ok(ClientAuth {
            token_auth: self.token_auth,
            client_id,
            token_endpoint: token_endpoint.to_owned(),
            signer: self.signer.clone(),
        })
    }

    /// Checks the `id_token` of a code exchange, when this bank is configured for FAPI.
    pub(super) async fn check_id_token(
        &self,
        id_token: Option<&str>,
        code: &str,
        check: IdTokenCheck<'_>,
    ) -> Result<(), BankError> {
        if !self.validate_id_tokens {
            return Ok(());
        }
        let refused = |why: &str| BankError::protocol(format!("id_token refused: {why}"));
        let token = id_token.ok_or_else(|| refused("the bank sent none"))?;
        let discovery = self.discovery().await?;
        let issuer = discovery
            .issuer
            .as_deref()
            .ok_or_else(|| refused("the bank's metadata has no issuer"))?;
        let keys = self.bank_keys(id_token::key_id(token).as_deref()).await?;
        let expected = Expected {
            issuer,
            client_id: self.client_id()?,
            nonce: check.nonce,
            code,
            state: check.state,
            intent_id: check.intent_id,
            now: OffsetDateTime::now_utc().unix_timestamp(),
        };
        id_token::validate(token, &keys, &expected).map_err(|why| refused(&why))
    }

    /// The bank's JWKS, from the cache unless it is old or lacks `kid`.
    async fn bank_keys(&self, kid: Option<&str>) -> Result<Arc<Jwks>, BankError> {
        let mut cached = self.jwks.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c.fetched.elapsed() < JWKS_TTL;
            let recent = c.fetched.elapsed() < JWKS_MIN_REFETCH;
            if (fresh && c.keys.knows(kid)) || recent {
                return Ok(c.keys.clone());
            }
        }
        let discovery = self.discovery().await?;
        let uri = discovery
            .jwks_uri
            .as_deref()
            .ok_or_else(|| BankError::protocol("the bank's metadata has no jwks_uri"))?;
        let url = Url::parse(uri).map_err(|_| BankError::protocol("malformed jwks_uri"))?;
        let mut out = Outgoing::get(url, "/jwks");
        out.headers
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        let keys: Jwks = self.oauth.send(out).await?.json("JWKS")?;
        let keys = Arc::new(keys);
        *cached = Some(CachedJwks {
            keys: keys.clone(),
            fetched: Instant::now(),
        });
        Ok(keys)
    }
}
