//! The hosted connect pages: the user picks a bank and goes to its SCA; the bank sends them back
//! to `/connect/callback`; the hub sends them on to the tenant. Pages are plain HTML in English
//! or German, carry the connect token in their forms (the token is the user's capability for
//! this one connection), and are never cached or framed, and never leak the token as a referrer.

mod i18n;
mod limited;
pub mod pay;
mod render;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, REFERRER_POLICY,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_domain::ConnectionId;
use kontor_domain::bank::BankId;
use kontor_domain::branding::{Branding, LogoUrl};
use kontor_domain::connection::Language;
use kontor_service::{NextStep, ScaChoice, ServiceError, SyncTrigger};
use serde::Deserialize;

use crate::extract::Peer;
use crate::state::AppState;
use i18n::texts;

/// Escapes text for HTML content and attribute values (for pages built outside this crate).
pub fn escape_html(raw: &str) -> String {
    render::escape(raw)
}

/// Images from the hub itself only; a page with a tenant's logo adds that one origin (see
/// [`csp_with_logo`]), so that no other host learns who opens a connect page.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   base-uri 'none'; frame-ancestors 'none'";

/// The pages' policy with the tenant's logo origin allowed for images. The browser fetches the
/// logo from the tenant's host, which so learns the user's address and when the page was opened
/// (the connect token is not sent: `Referrer-Policy: no-referrer`); a tenant that prefers
/// otherwise serves the logo from its own domain or sets none.
fn csp_with_logo(logo: &LogoUrl) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: {}; \
         base-uri 'none'; frame-ancestors 'none'",
        logo.origin()
    )
}

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

fn html(status: StatusCode, body: String) -> Response {
    secure((status, [("content-type", "text/html; charset=utf-8")], body).into_response())
}

/// A page that shows the tenant's logo: the same headers, images allowed from its origin.
fn html_branded(status: StatusCode, body: String, branding: &Branding) -> Response {
    let mut response = html(status, body);
    if let Some(policy) = branding
        .logo_url
        .as_ref()
        .and_then(|logo| HeaderValue::from_str(&csp_with_logo(logo)).ok())
    {
        response
            .headers_mut()
            .insert(CONTENT_SECURITY_POLICY, policy);
    }
    response
}

fn see_other(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => secure((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()),
        Err(_) => html(StatusCode::INTERNAL_SERVER_ERROR, String::new()),
    }
}

/// The page language: asked for explicitly, else the tenant's choice, else the browser's.
fn language(asked: Option<&str>, chosen: Option<Language>, headers: &HeaderMap) -> Language {
    asked
        .and_then(Language::parse)
        .or(chosen)
        .unwrap_or_else(|| {
            let accept = headers
                .get(ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Language::negotiate(accept)
        })
}

/// The user's address: from the connection, or from `X-Forwarded-For` behind a trusted proxy.
pub(crate) fn client_ip(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    state.settings().client_ip(headers, peer)
}

fn invalid_link(language: Language) -> Response {
    let t = texts(language);
    html(
        StatusCode::NOT_FOUND,
        render::message_page(t, t.invalid_link, t.invalid_link_text, None),
    )
}

fn failure(language: Language, err: &ServiceError) -> Response {
    match err {
        ServiceError::NotFound | ServiceError::Invalid { .. } => invalid_link(language),
        ServiceError::Conflict { code, .. } => {
            tracing::info!(code = code.as_str(), "page step refused for now");
            let t = texts(language);
            html(
                StatusCode::CONFLICT,
                render::message_page(t, t.error_title, t.busy_text, None),
            )
        }
        other => {
            tracing::error!(error = %other, "connect page failed");
            let t = texts(language);
            html(
                StatusCode::BAD_GATEWAY,
                render::message_page(t, t.error_title, t.invalid_link_text, None),
            )
        }
    }
}

fn form_fields(raw: &[u8]) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    token: Option<String>,
    q: Option<String>,
    country: Option<String>,
    lang: Option<String>,
}

fn page_query(raw: Option<&str>) -> PageQuery {
    serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default()
}

/// Where the user goes next, and the initial sync when a connection just became active.
fn follow(
    state: &AppState,
    step: NextStep,
    wait_url: Option<String>,
    ip: Option<IpAddr>,
) -> Response {
    match step {
        NextStep::Bank(url) => see_other(url.as_str()),
        NextStep::Wait => match wait_url {
            Some(url) => see_other(&url),
            None => invalid_link(Language::En),
        },
        NextStep::Tenant { url, activated } => {
            if let Some(id) = activated {
                let hub = state.hub().clone();
                let trigger = ip.map_or(SyncTrigger::Scheduled, SyncTrigger::UserPresent);
                tokio::spawn(async move {
                    if let Err(err) = hub.sync(&id, trigger).await {
                        tracing::warn!(connection.id = %id, error = %err, "initial sync failed; the worker retries");
                    }
                });
            }
            see_other(url.as_str())
        }
    }
}

fn wait_url(id: &ConnectionId, token: &str, language: Language) -> String {
    format!("{}/wait?{}", connect_path(id), link_query(token, language))
}

fn connect_path(id: &ConnectionId) -> String {
    format!("/connect/{id}")
}

fn link_query(token: &str, language: Language) -> String {
    serde_urlencoded::to_string([("token", token), ("lang", language.as_str())]).unwrap_or_default()
}

/// The connect page again (to choose another way, or try again).
fn connect_url(id: &ConnectionId, token: &str, language: Language) -> String {
    format!("{}?{}", connect_path(id), link_query(token, language))
}

/// `GET /connect/{id}`: the connect page.
pub async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = page_query(query.as_deref());
    let fallback = language(query.lang.as_deref(), None, &headers);
    let (Ok(id), Some(token)) = (ConnectionId::parse(&id), query.token.as_deref()) else {
        return invalid_link(fallback);
    };
    match state.hub().link_page(&id, token).await {
        Ok(page) => {
            let lang = language(query.lang.as_deref(), page.connection.language, &headers);
            let t = texts(lang);
            if page.connection.status.as_str() != "pending" {
                let status = i18n::status_word(lang, page.connection.status.as_str());
                let back = kontor_service::redirect_url(&page.connection).ok();
                let label = t.back_to.replace("{tenant}", &page.tenant_name);
                let text = t.settled.replace("{status}", status);
                return html(
                    StatusCode::OK,
                    render::message_page(
                        t,
                        t.title,
                        &text,
                        back.as_ref().map(|u| (label.as_str(), u.as_str())),
                    ),
                );
            }
            let body = render::connect_page(
                t,
                &page,
                token,
                query.q.as_deref().unwrap_or(""),
                query.country.as_deref(),
            );
            html_branded(StatusCode::OK, body, &page.branding)
        }
        Err(err) => failure(fallback, &err),
    }
}

/// `POST /connect/{id}/start`: create the consent at the bank and go there.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    let lang = language(form.get("lang").map(String::as_str), None, &headers);
    let ip = client_ip(&state, &headers, peer);
    if let Some(refused) = limited::from_address(&state, lang, ip) {
        return refused;
    }
    let (Ok(id), Some(token), Some(Ok(bank))) = (
        ConnectionId::parse(&id),
        form.get("token"),
        form.get("bank_id").map(|b| BankId::parse(b)),
    ) else {
        return invalid_link(lang);
    };
    // Approval in the app: with the login name typed here, or the one the tenant bound (the
    // page does not ask for it then, and the hub ignores one typed anyway).
    let sca = match form.get("method").map(String::as_str) {
        Some("app") => ScaChoice::Decoupled {
            psu_id: form
                .get("psu_id")
                .map(|psu| psu.trim())
                .filter(|psu| !psu.is_empty() && psu.chars().count() <= 100)
                .map(str::to_owned),
        },
        _ => ScaChoice::Redirect,
    };
    if let Some(refused) = limited::for_link(&state, lang, &id, token).await {
        return refused;
    }
    match state.hub().start_link(&id, token, &bank, sca, ip).await {
        Ok(step) => follow(&state, step, Some(wait_url(&id, token, lang)), ip),
        Err(ServiceError::Conflict {
            code: kontor_service::ErrorCode::DecoupledStartsUsed,
            ..
        }) => {
            let t = texts(lang);
            let back = connect_url(&id, token, lang);
            html(
                StatusCode::TOO_MANY_REQUESTS,
                render::message_page(
                    t,
                    t.starts_used_title,
                    t.starts_used_text,
                    Some((t.back_to_banks, &back)),
                ),
            )
        }
        Err(err) => failure(lang, &err),
    }
}

/// `POST /connect/{id}/cancel`: the user does not want to link; back to the tenant.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    let lang = language(form.get("lang").map(String::as_str), None, &headers);
    let (Ok(id), Some(token)) = (ConnectionId::parse(&id), form.get("token")) else {
        return invalid_link(lang);
    };
    match state.hub().cancel_link(&id, token).await {
        Ok(step) => follow(&state, step, None, None),
        Err(err) => failure(lang, &err),
    }
}

/// `GET /connect/{id}/wait`: decoupled SCA in progress; asks the bank on every refresh.
pub async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    let query = page_query(query.as_deref());
    let lang = language(query.lang.as_deref(), None, &headers);
    let (Ok(id), Some(token)) = (ConnectionId::parse(&id), query.token.as_deref()) else {
        return invalid_link(lang);
    };
    let ip = client_ip(&state, &headers, peer);
    match state.hub().poll_link(&id, token).await {
        Ok(NextStep::Wait) => {
            let tenant = match state.hub().link_page(&id, token).await {
                Ok(page) => page.tenant_name,
                Err(err) => return failure(lang, &err),
            };
            html(
                StatusCode::OK,
                render::wait_page(
                    texts(lang),
                    &tenant,
                    &wait_url(&id, token, lang),
                    &connect_url(&id, token, lang),
                ),
            )
        }
        Ok(step) => follow(&state, step, None, ip),
        Err(err) => failure(lang, &err),
    }
}

/// `GET /connect/callback`: the bank sends the user back here.
pub async fn callback(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    let params = form_fields(query.unwrap_or_default().as_bytes());
    let lang = language(None, None, &headers);
    let ip = client_ip(&state, &headers, peer);
    match state.hub().link_callback(params).await {
        Ok(NextStep::Wait) => invalid_link(lang),
        Ok(step) => follow(&state, step, None, ip),
        Err(err) => failure(lang, &err),
    }
}
