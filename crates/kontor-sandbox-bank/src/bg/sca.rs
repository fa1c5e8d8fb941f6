//! Shared by consents and payments: choosing the SCA approach from the TPP's headers, creating
//! authorisation sub-resources, and building `_links` and response headers.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use super::error::{BgError, BgResult, Service};
use super::headers::TppHeaders;
use crate::state::BankState;
use crate::state::sca::{AuthTarget, Authorisation, ScaApproach};

/// Decides the SCA approach from the TPP's headers: decoupled when the TPP prefers no
/// redirect (and names the PSU), redirect otherwise.
pub fn choose_approach(
    tpp: &TppHeaders,
    state: &BankState,
    service: Service,
) -> BgResult<ScaApproach> {
    if tpp.redirect_preferred == Some(false) {
        let known = tpp
            .psu_id
            .as_deref()
            .is_some_and(|id| state.book_of(id).is_some());
        if !known {
            return Err(BgError::new(
                service,
                StatusCode::UNAUTHORIZED,
                "PSU_CREDENTIALS_INVALID",
                "decoupled SCA needs a PSU-ID of a customer of this bank",
            ));
        }
        return Ok(ScaApproach::Decoupled);
    }
    if tpp.redirect_uri.is_none() {
        return Err(BgError::format(
            service,
            "header TPP-Redirect-URI is required for the redirect SCA approach",
        ));
    }
    Ok(ScaApproach::Redirect)
}

/// Creates an authorisation sub-resource for a consent or payment.
pub fn new_authorisation(
    state: &mut BankState,
    target: AuthTarget,
    approach: ScaApproach,
    tpp: &TppHeaders,
    fallback: (Option<String>, Option<String>),
    now: time::OffsetDateTime,
) -> String {
    let id = state.next_id("auth-");
    let mut auth = Authorisation::new(id.clone(), target, approach, now);
    auth.redirect_ok = tpp.redirect_uri.clone().or(fallback.0);
    auth.redirect_nok = tpp.nok_redirect_uri.clone().or(fallback.1);
    if approach == ScaApproach::Decoupled {
        auth.psu = tpp
            .psu_id
            .as_deref()
            .and_then(|id| crate::data::users::find(id))
            .map(|u| u.username);
    }
    state.authorisations.insert(id.clone(), auth);
    id
}

/// The approach of an existing consent or payment, for answering a retried creation: that of
/// its first authorisation, else what the (same) headers choose.
pub fn approach_of(
    state: &BankState,
    authorisations: &[String],
    tpp: &TppHeaders,
    service: Service,
) -> ScaApproach {
    authorisations
        .first()
        .and_then(|a| state.authorisations.get(a))
        .map(|a| a.approach)
        .or_else(|| choose_approach(tpp, state, service).ok())
        .unwrap_or(ScaApproach::Redirect)
}

pub fn links_from(list: Vec<(&'static str, String)>) -> super::wire::Links {
    list.into_iter()
        .map(|(k, v)| (k, super::wire::Href { href: v }))
        .collect()
}

pub fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}
