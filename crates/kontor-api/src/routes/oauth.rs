//! `POST /v1/oauth/token`: the OAuth2 client credentials grant (RFC 6749 §4.4). The client
//! authenticates with HTTP Basic or with `client_id`/`client_secret` in the form body (§2.3.1),
//! never both, and gets a short-lived bearer token for the scopes it asked for (all of its own by
//! default). Errors use the API's envelope, with RFC 6749's error names as codes. Failed
//! authentications are rate-limited per client id and per address (`crate::limits`).
//!
//! A client bound to certificates (`kontor clients bind`) must, besides its secret, present one
//! of them over mutual TLS; its token is then bound to that certificate (RFC 8705 §3, the
//! `cnf` claim), and is good only on requests that present the same one. Without it, or with
//! another certificate, the answer is `invalid_client` and counts as a failed authentication.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kontor_domain::ApiClientId;
use kontor_domain::tenant::Scopes;
use kontor_domain::time::Timestamp;
use kontor_service::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{certificate, verify_secret};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{Peer, body_bytes, has_content_type};
use crate::pages::client_ip;
use crate::state::AppState;

const BASIC_CHALLENGE: &str = "Basic realm=\"kontor\"";

/// The token request, as `application/x-www-form-urlencoded`. Documents the form for OpenAPI;
/// the handler reads it field by field so that repeated parameters can be refused.
#[derive(Debug, ToSchema)]
#[expect(dead_code, reason = "the schema of the form; never constructed")]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(example = "client_credentials")]
    pub grant_type: String,
    /// Space-separated scopes; defaults to all the client's scopes.
    #[schema(example = "users:read users:write")]
    pub scope: Option<String>,
    /// Only when not using HTTP Basic.
    pub client_id: Option<String>,
    /// Only when not using HTTP Basic.
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    #[schema(example = "users:read users:write")]
    pub scope: String,
}

fn invalid_request(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn invalid_client(basic: bool) -> ApiError {
    invalid_client_because(basic, "client authentication failed")
}

fn invalid_client_because(basic: bool, message: &str) -> ApiError {
    let err = ApiError::new(ErrorCode::InvalidClient, message);
    if basic {
        err.with_challenge(BASIC_CHALLENGE)
    } else {
        err
    }
}

/// Decodes one component of Basic credentials, which RFC 6749 §2.3.1 form-encodes first.
fn form_decode(raw: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={raw}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

fn basic_credentials(headers: &HeaderMap) -> ApiResult<Option<(String, String)>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || invalid_client(true);
    let value = value.to_str().map_err(|_| malformed())?;
    let encoded = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
        _ => return Err(malformed()),
    };
    let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((
        form_decode(id).ok_or_else(malformed)?,
        form_decode(secret).ok_or_else(malformed)?,
    )))
}

/// Parses the form, refusing repeated parameters as RFC 6749 §3.2 requires.
fn parse_form(body: &[u8]) -> ApiResult<HashMap<String, String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| invalid_request("the body is not a valid form"))?;
    let mut form = HashMap::new();
    for (key, value) in pairs {
        if form.insert(key.clone(), value).is_some() {
            return Err(invalid_request(&format!("parameter {key} is repeated")));
        }
    }
    Ok(form)
}

/// Exchange client credentials for a bearer token.
///
/// A client bound to certificates must also present one of them over mutual TLS; its token is
/// then bound to that certificate (RFC 8705: the same certificate must be presented with the
/// token on every request).
#[utoipa::path(
    post, path = "/v1/oauth/token", tag = "auth", operation_id = "createToken",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type or invalid_scope", body = ErrorEnvelope),
        (status = 401, description = "invalid_client: unknown client, wrong secret, revoked, or a client bound to certificates that did not present one of them over mutual TLS", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not a form body", body = ErrorEnvelope),
        (status = 429, description = "rate_limited: too many failed authentications from this address or for this client", body = ErrorEnvelope),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    Peer(peer): Peer,
    request: Request,
) -> ApiResult<Response> {
    let ip = client_ip(&state, request.headers(), peer);
    let limits = state.limits();
    let extensions = request.extensions().clone();
    // An address that failed too often is refused before its credentials are even looked at.
    limits.token_attempt(ip, None, &extensions)?;
    let failed = |client: Option<&ApiClientId>, err: ApiError| {
        if err.code() == ErrorCode::InvalidClient {
            limits.token_failed(ip, client);
        }
        err
    };
    if !has_content_type(request.headers(), "application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the token request as application/x-www-form-urlencoded",
        ));
    }
    let basic = basic_credentials(request.headers()).map_err(|err| failed(None, err))?;
    let presented = certificate::presented(state.settings(), request.headers(), &extensions);
    let body = body_bytes(request).await?;
    let mut form = parse_form(&body)?;

    match form.remove("grant_type").as_deref() {
        None => return Err(invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedGrantType,
                "only grant_type=client_credentials is supported",
            ));
        }
    }
    let body_credentials = (form.remove("client_id"), form.remove("client_secret"));
    let via_basic = basic.is_some();
    let (client_id, secret) = match (basic, body_credentials) {
        (Some(_), (Some(_), _) | (_, Some(_))) => {
            return Err(invalid_request(
                "use either HTTP Basic or body credentials, not both",
            ));
        }
        (Some(credentials), _) => credentials,
        (None, (Some(id), Some(secret))) => (id, secret),
        (None, _) => return Err(failed(None, invalid_client(false))),
    };

    let client_id =
        ApiClientId::parse(&client_id).map_err(|_| failed(None, invalid_client(via_basic)))?;
    limits.token_attempt(None, Some(&client_id), &extensions)?;
    let (client, hash) = match state.hub().api_client_with_secret(&client_id).await {
        Ok(found) => found,
        Err(ServiceError::NotFound) => {
            return Err(failed(Some(&client_id), invalid_client(via_basic)));
        }
        Err(err) => return Err(err.into()),
    };
    if !verify_secret(&secret, &hash) || !client.is_active() {
        tracing::info!(client.id = %client.id, "client authentication failed");
        return Err(failed(Some(&client_id), invalid_client(via_basic)));
    }
    // Checked only once the secret is: whether a client is bound tells nobody else anything.
    let bound: Vec<_> = state
        .hub()
        .client_certificates(&client.id)
        .await?
        .into_iter()
        .map(|binding| binding.thumbprint)
        .collect();
    let confirmation = certificate::for_token(&bound, presented).map_err(|problem| {
        tracing::info!(client.id = %client.id, problem, "client certificate refused");
        failed(Some(&client_id), invalid_client_because(via_basic, problem))
    })?;

    let scopes = match form.remove("scope").filter(|s| !s.trim().is_empty()) {
        None => client.scopes.clone(),
        Some(raw) => {
            let requested = Scopes::parse(&raw)
                .map_err(|err| ApiError::new(ErrorCode::InvalidScope, err.to_string()))?;
            if !requested.is_subset(&client.scopes) {
                return Err(ApiError::new(
                    ErrorCode::InvalidScope,
                    format!("this client may request only: {}", client.scopes),
                ));
            }
            requested
        }
    };
    let (access_token, claims) = state.tokens().issue_bound(
        &client.tenant_id,
        &client.id,
        &scopes,
        confirmation,
        Timestamp::now(),
    );
    tracing::info!(
        client.id = %client.id,
        tenant.id = %client.tenant_id,
        certificate_bound = confirmation.is_some(),
        "token issued"
    );
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens().ttl_seconds(),
        scope: claims.scopes.to_string(),
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("cli_abc:se%2Bcret%3A1");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let (id, secret) = basic_credentials(&headers).unwrap().unwrap();
        assert_eq!(id, "cli_abc");
        assert_eq!(secret, "se+cret:1");

        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(
            basic_credentials(&headers).unwrap_err().code(),
            ErrorCode::InvalidClient
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(basic_credentials(&headers).is_err());
        assert!(basic_credentials(&HeaderMap::new()).unwrap().is_none());
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_form(b"grant_type=client_credentials&scope=a").is_ok());
        let err = parse_form(b"grant_type=a&grant_type=b").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }
}
