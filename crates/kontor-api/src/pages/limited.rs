//! Rate limits on the hosted pages' starts (`POST /connect/{id}/start`, `POST /pay/{id}/start`):
//! each start asks a bank to create something and may reach a person's phone, so starts are
//! limited per client address (before anything else is looked at) and per tenant (once the
//! link is known to be genuine). A refused start is a `429` page in the page's language.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::Response;
use kontor_domain::connection::Language;
use kontor_domain::{ConnectionId, PaymentId, TenantId};

use super::i18n::texts;
use super::{failure, html, render};
use crate::limits::{self, Quota};
use crate::state::AppState;

/// Takes a start from the address's budget; the refusal page if there is none left.
pub(super) fn from_address(
    state: &AppState,
    lang: Language,
    ip: Option<IpAddr>,
) -> Option<Response> {
    let quota = state.limits().page_start_from(ip).err()?;
    tracing::info!("page start rate-limited for its address");
    Some(refused(lang, &quota))
}

/// Takes a start from the budget of the tenant whose link this is; the page to answer
/// instead if there is none left (or the link is not genuine).
pub(super) async fn for_link(
    state: &AppState,
    lang: Language,
    id: &ConnectionId,
    token: &str,
) -> Option<Response> {
    match state.hub().link_page(id, token).await {
        Ok(page) => for_tenant(state, lang, &page.connection.tenant_id),
        Err(err) => Some(failure(lang, &err)),
    }
}

/// The same for the tenant whose payment this is.
pub(super) async fn for_payment(
    state: &AppState,
    lang: Language,
    id: &PaymentId,
    token: &str,
) -> Option<Response> {
    match state.hub().payment_page(id, token).await {
        Ok(page) => for_tenant(state, lang, &page.payment.tenant_id),
        Err(err) => Some(failure(lang, &err)),
    }
}

fn for_tenant(state: &AppState, lang: Language, tenant: &TenantId) -> Option<Response> {
    let quota = state.limits().page_start_for(tenant).err()?;
    tracing::info!(tenant.id = %tenant, "page start rate-limited for its tenant");
    Some(refused(lang, &quota))
}

/// The `429` page, saying how long to wait, with `Retry-After` and the `RateLimit-*` headers.
fn refused(lang: Language, quota: &Quota) -> Response {
    let t = texts(lang);
    let wait = limits::seconds_up(quota.retry_after.unwrap_or_default()).max(1);
    let text = t.rate_limited_text.replace("{seconds}", &wait.to_string());
    let mut response = html(
        StatusCode::TOO_MANY_REQUESTS,
        render::message_page(t, t.rate_limited_title, &text, None),
    );
    limits::write_headers(response.headers_mut(), quota);
    response
}
