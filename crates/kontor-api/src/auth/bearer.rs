//! The bearer-token extractor: every tenant route takes an [`Authenticated`], through
//! [`super::Scoped`], which names the scope it needs. The token's signature and expiry are
//! checked locally; whether its client has been revoked is asked of the control database at most
//! once per client per cache period, together with the certificates it is bound to, which a
//! bound token's request must present (`super::certificate`). Then the tenant's rate limit
//! takes one request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use kontor_domain::tenant::{Scope, Scopes};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, CertificateThumbprint, TenantId};
use kontor_service::{Hub, ServiceError};

use crate::auth::TokenError;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

const CHALLENGE: &str = "Bearer realm=\"kontor\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"kontor\", error=\"invalid_token\"";
const CHALLENGE_SCOPE: &str = "Bearer realm=\"kontor\", error=\"insufficient_scope\"";

/// The tenant and client a request acts for, and what it may do.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub tenant: TenantId,
    pub client: ApiClientId,
    pub scopes: Scopes,
}

impl Authenticated {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("this endpoint needs the scope {scope}"),
            )
            .with_challenge(CHALLENGE_SCOPE))
        }
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, message).with_challenge(CHALLENGE_INVALID)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingToken,
                "send an Authorization: Bearer token",
            )
            .with_challenge(CHALLENGE)
        })?;
        let value = header
            .to_str()
            .map_err(|_| invalid("malformed Authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(invalid(
                    "the Authorization header must use the Bearer scheme",
                ));
            }
        };
        let claims = state
            .tokens()
            .verify(token, Timestamp::now())
            .map_err(|err| match err {
                TokenError::Expired => ApiError::new(
                    ErrorCode::TokenExpired,
                    "the token has expired; request a new one",
                )
                .with_challenge(CHALLENGE_INVALID),
                _ => invalid("the token is not valid"),
            })?;
        let standing = state
            .clients()
            .standing(state.hub(), &claims.client)
            .await?;
        if !standing.active {
            return Err(invalid("the token's client has been revoked"));
        }
        let presented =
            super::certificate::presented(state.settings(), &parts.headers, &parts.extensions);
        super::certificate::confirm(&claims, &standing.certificates, presented)?;
        let span = tracing::Span::current();
        span.record("tenant.id", claims.tenant.as_str());
        span.record("client.id", claims.client.as_str());
        // The tenant is known only now, so its rate limit comes after authentication.
        state
            .limits()
            .api_request(&claims.tenant, &parts.extensions)?;
        Ok(Authenticated {
            tenant: claims.tenant,
            client: claims.client,
            scopes: claims.scopes,
        })
    }
}

/// What the API needs to know of a client on every request.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub active: bool,
    /// The certificates the client is bound to; empty when it is not.
    pub certificates: Arc<[CertificateThumbprint]>,
}

/// Remembers, for a short while, which clients are active and what they are bound to.
pub(crate) struct ClientCache {
    ttl: Duration,
    entries: Mutex<HashMap<ApiClientId, (Standing, Instant)>>,
}

impl ClientCache {
    const MAX_ENTRIES: usize = 10_000;

    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, client: &ApiClientId) -> Option<Standing> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(client)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(standing, _)| standing.clone())
    }

    fn remember(&self, client: &ApiClientId, standing: Standing) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            entries.insert(client.clone(), (standing, Instant::now()));
        }
    }

    pub(crate) async fn standing(
        &self,
        hub: &Hub,
        client: &ApiClientId,
    ) -> Result<Standing, ApiError> {
        if let Some(standing) = self.cached(client) {
            return Ok(standing);
        }
        let active = match hub.api_client(client).await {
            Ok(client) => client.is_active(),
            Err(ServiceError::NotFound) => false,
            Err(err) => return Err(err.into()),
        };
        let certificates = if active {
            hub.client_certificates(client)
                .await?
                .into_iter()
                .map(|binding| binding.thumbprint)
                .collect()
        } else {
            Arc::from([])
        };
        let standing = Standing {
            active,
            certificates,
        };
        self.remember(client, standing.clone());
        Ok(standing)
    }
}
