//! The hosted payment pages: the user confirms the payment on the hub's page, authorises it at
//! the bank, and comes back through `/pay/callback` to the tenant.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kontor_domain::PaymentId;
use kontor_domain::payment::PaymentPhase;
use kontor_service::NextStep;

use super::i18n::{payment_status_word, texts};
use super::{
    client_ip, failure, form_fields, html_branded, invalid_link, language, limited, page_query,
    render, see_other,
};
use crate::extract::Peer;
use crate::state::AppState;

fn go(step: NextStep, lang: kontor_domain::connection::Language) -> Response {
    match step {
        NextStep::Bank(url) | NextStep::Tenant { url, .. } => see_other(url.as_str()),
        NextStep::Wait => invalid_link(lang),
    }
}

/// `GET /pay/{id}`: what is being paid, and the way to the bank.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = page_query(query.as_deref());
    let lang = language(query.lang.as_deref(), None, &headers);
    let (Ok(id), Some(token)) = (PaymentId::parse(&id), query.token.as_deref()) else {
        return invalid_link(lang);
    };
    match state.hub().payment_page(&id, token).await {
        Ok(page) => {
            let t = texts(lang);
            if !matches!(
                page.payment.phase,
                PaymentPhase::Accepted | PaymentPhase::Initiating | PaymentPhase::AwaitingSca
            ) {
                let word = payment_status_word(lang, page.payment.status);
                let back = kontor_service::payment_redirect(&page.payment).ok();
                let label = t.back_to.replace("{tenant}", &page.tenant_name);
                let text = t.pay_settled.replace("{status}", word);
                return html_branded(
                    StatusCode::OK,
                    render::message_page_branded(
                        t,
                        t.pay_title,
                        &text,
                        back.as_ref().map(|u| (label.as_str(), u.as_str())),
                        &page.branding,
                        &page.tenant_name,
                    ),
                    &page.branding,
                );
            }
            html_branded(
                StatusCode::OK,
                render::payment_page(t, &page, token),
                &page.branding,
            )
        }
        Err(err) => failure(lang, &err),
    }
}

/// `POST /pay/{id}/start`: create the payment at the bank and go there to authorise it.
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
    let (Ok(id), Some(token)) = (PaymentId::parse(&id), form.get("token")) else {
        return invalid_link(lang);
    };
    if let Some(refused) = limited::for_payment(&state, lang, &id, token).await {
        return refused;
    }
    match state.hub().start_payment(&id, token, ip).await {
        Ok(step) => go(step, lang),
        Err(err) => failure(lang, &err),
    }
}

/// `POST /pay/{id}/cancel`: the user does not want to pay; back to the tenant.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    let lang = language(form.get("lang").map(String::as_str), None, &headers);
    let (Ok(id), Some(token)) = (PaymentId::parse(&id), form.get("token")) else {
        return invalid_link(lang);
    };
    match state.hub().cancel_payment(&id, token).await {
        Ok(step) => go(step, lang),
        Err(err) => failure(lang, &err),
    }
}

/// `GET /pay/callback`: the bank sends the user back here.
pub async fn callback(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = form_fields(query.unwrap_or_default().as_bytes());
    let lang = language(None, None, &headers);
    match state.hub().payment_callback(params).await {
        Ok(step) => go(step, lang),
        Err(err) => failure(lang, &err),
    }
}
