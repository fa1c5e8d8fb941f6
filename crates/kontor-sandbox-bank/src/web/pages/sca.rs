//! Redirect SCA pages: `GET /sca/{id}` shows the current step (login, one-time code, account
//! choice, result); the forms post to `/sca/{id}/login|otp|accounts|cancel`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::render::{error_block, escape, labels, page};
use crate::core::money;
use crate::state::flows::{self, Attempt, FlowError, Outcome};
use crate::state::sca::{AuthTarget, ScaApproach, ScaStatus, Step};
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, form_pairs, read_body};

/// One line saying what the PSU is asked to approve.
pub fn describe(state: &BankState, target: &AuthTarget, language: &str) -> String {
    let (consent_text, until_text, pay_text) = match language {
        "de" => (
            "Ein Drittanbieter möchte auf Ihre Kontodaten zugreifen",
            "gültig bis",
            "Zahlung",
        ),
        "fr" => (
            "Un prestataire tiers demande l'accès à vos comptes",
            "valable jusqu'au",
            "Paiement",
        ),
        _ => (
            "A third-party provider asks for access to your account data",
            "valid until",
            "Payment",
        ),
    };
    match target {
        AuthTarget::BgConsent(id) => {
            let until = state
                .consents
                .get(id)
                .map(|c| crate::core::dates::format_date(c.valid_until))
                .unwrap_or_default();
            format!("{consent_text}, {until_text} {until}.")
        }
        AuthTarget::UkAccountConsent(id) => {
            let client = state
                .uk_account_consents
                .get(id)
                .map(|c| c.client_id.clone())
                .unwrap_or_default();
            format!("{consent_text}: {client}.")
        }
        AuthTarget::BgPayment(id) => state.payments.get(id).map_or_else(String::new, |p| {
            format!(
                "{pay_text}: {} → {} ({})",
                money::display(p.amount, &p.currency),
                p.creditor.name,
                p.creditor.identification
            )
        }),
        AuthTarget::UkPaymentConsent(id) => {
            state
                .uk_payment_consents
                .get(id)
                .map_or_else(String::new, |c| {
                    let creditor = c
                        .initiation
                        .pointer("/CreditorAccount/Name")
                        .and_then(|v| v.as_str())
                        .unwrap_or("");
                    format!(
                        "{pay_text}: {} → {creditor}",
                        money::display(c.amount, &c.currency)
                    )
                })
        }
    }
}

fn not_found(bank: &Bank) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            bank,
            "error",
            "Unknown authorisation",
            r#"<p id="error" class="error">This authorisation does not exist.</p>"#,
        ),
    )
        .into_response()
}

/// Renders the page for the authorisation's current state, with an optional error.
fn render(bank: &Bank, state: &BankState, auth_id: &str, error: Option<&str>) -> Response {
    let Some(auth) = state.authorisations.get(auth_id) else {
        return not_found(bank);
    };
    let l = labels(&bank.config.theme.language);
    let summary = format!(
        r#"<p id="summary" class="summary">{}</p>"#,
        escape(&describe(state, &auth.target, &bank.config.theme.language))
    );
    let base = format!("/{}/sca/{}", bank.id(), escape(auth_id));
    let cancel = format!(
        r#"<form id="cancel-form" method="post" action="{base}/cancel"><button id="cancel" class="secondary" type="submit">{}</button></form>"#,
        l.cancel
    );
    let back = |title: &str, step: &str| {
        let link = auth.outcome_url.as_deref().map_or_else(String::new, |u| {
            format!(
                r#"<p><a id="return" href="{}">{}</a></p>"#,
                escape(u),
                l.back
            )
        });
        page(
            bank,
            step,
            title,
            &format!("{}{summary}{link}", error_block(error)),
        )
        .into_response()
    };
    if auth.status == ScaStatus::Failed {
        return back(l.failed_title, "failed");
    }
    if auth.status == ScaStatus::Finalised {
        return back(l.done_title, "done");
    }
    if auth.approach == ScaApproach::Decoupled {
        let app = format!(
            r#"<p id="decoupled">Open the <a id="app-link" href="/{}/app">{} app</a> to approve.</p>"#,
            bank.id(),
            escape(&bank.config.name)
        );
        return page(bank, "decoupled", l.app_title, &format!("{summary}{app}")).into_response();
    }
    let left = sca_left(auth.failures);
    let attempts = if auth.failures > 0 {
        format!(r#"<p id="attempts">{}: {left}</p>"#, l.attempts_left)
    } else {
        String::new()
    };
    let content = match auth.step {
        Step::Login => format!(
            r#"{summary}{err}{attempts}<form id="login-form" method="post" action="{base}/login">
<label for="username">{u}</label><input type="text" id="username" name="username" autocomplete="username" autofocus>
<label for="password">{p}</label><input type="password" id="password" name="password" autocomplete="current-password">
<button id="submit" class="primary" type="submit">{c}</button></form>{cancel}"#,
            err = error_block(error),
            u = l.username,
            p = l.password,
            c = l.continue_
        ),
        Step::OneTimeCode => format!(
            r#"{summary}<p id="hint">{hint}</p>{err}{attempts}<form id="otp-form" method="post" action="{base}/otp">
<label for="otp">{o}</label><input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" autofocus>
<button id="submit" class="primary" type="submit">{c}</button></form>{cancel}"#,
            hint = l.otp_hint,
            err = error_block(error),
            o = l.otp,
            c = l.confirm
        ),
        Step::ChooseAccounts => {
            let single = auth.choose_single_account;
            let accounts = auth
                .psu
                .and_then(|p| state.book_of(p))
                .and_then(|i| state.books.get(i))
                .map(|b| b.accounts.clone())
                .unwrap_or_default();
            let mut items = String::new();
            for (i, a) in accounts.iter().enumerate() {
                let kind = if single { "radio" } else { "checkbox" };
                let checked = if !single || i == 0 { " checked" } else { "" };
                items.push_str(&format!(
                    r#"<label class="account" for="account-{id}"><input type="{kind}" id="account-{id}" name="account" value="{id}"{checked}> {name} · {iban}</label>"#,
                    id = escape(&a.resource_id), name = escape(&a.nickname), iban = escape(&a.iban)
                ));
            }
            format!(
                r#"{summary}{err}<form id="accounts-form" method="post" action="{base}/accounts">{items}<button id="submit" class="primary" type="submit">{c}</button></form>{cancel}"#,
                err = error_block(error),
                c = l.confirm
            )
        }
        Step::Done => String::new(),
    };
    let (title, step) = match auth.step {
        Step::Login => (l.login_title, "login"),
        Step::OneTimeCode => (l.otp_title, "otp"),
        Step::ChooseAccounts => (l.accounts_title, "accounts"),
        Step::Done => (l.done_title, "done"),
    };
    page(bank, step, title, &content).into_response()
}

fn sca_left(failures: u8) -> u8 {
    crate::state::sca::MAX_FAILURES.saturating_sub(failures)
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// After the authorisation ended: back to the TPP if it gave a URL, else the result page.
fn finish(bank: &Bank, state: &BankState, auth_id: &str, outcome: &Outcome) -> Response {
    match &outcome.redirect {
        Some(url) if outcome.success => see_other(url),
        _ => render(
            bank,
            state,
            auth_id,
            (!outcome.success).then_some(outcome.message.as_str()),
        ),
    }
}

fn flow_error(bank: &Bank, state: &BankState, auth_id: &str, error: FlowError) -> Response {
    match error {
        FlowError::UnknownAuthorisation => not_found(bank),
        FlowError::AlreadyFinished | FlowError::WrongStep => render(bank, state, auth_id, None),
    }
}

pub async fn show(State(bank): State<Arc<Bank>>, params: Params) -> Response {
    let state = bank.lock();
    render(&bank, &state, params.get(0), None)
}

async fn form(body: Body) -> Vec<(String, String)> {
    read_body(body)
        .await
        .map(|b| form_pairs(&b))
        .unwrap_or_default()
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    crate::web::extract::field(pairs, name).unwrap_or("")
}

pub async fn login(State(bank): State<Arc<Bank>>, params: Params, body: Body) -> Response {
    let pairs = form(body).await;
    let auth_id = params.get(0);
    let now = bank.now();
    let l = labels(&bank.config.theme.language);
    let mut state = bank.lock();
    match flows::login(
        &mut state,
        auth_id,
        value(&pairs, "username"),
        value(&pairs, "password"),
        now,
    ) {
        Ok(Attempt::Next(_)) => see_other(&format!("/{}/sca/{auth_id}", bank.id())),
        Ok(Attempt::Wrong { .. }) => render(&bank, &state, auth_id, Some(l.wrong_login)),
        Ok(Attempt::Finished(outcome)) => finish(&bank, &state, auth_id, &outcome),
        Err(e) => flow_error(&bank, &state, auth_id, e),
    }
}

pub async fn one_time_code(State(bank): State<Arc<Bank>>, params: Params, body: Body) -> Response {
    let pairs = form(body).await;
    let auth_id = params.get(0);
    let now = bank.now();
    let l = labels(&bank.config.theme.language);
    let mut state = bank.lock();
    match flows::one_time_code(&mut state, auth_id, value(&pairs, "otp"), now) {
        Ok(Attempt::Next(_)) => see_other(&format!("/{}/sca/{auth_id}", bank.id())),
        Ok(Attempt::Wrong { .. }) => render(&bank, &state, auth_id, Some(l.wrong_code)),
        Ok(Attempt::Finished(outcome)) => finish(&bank, &state, auth_id, &outcome),
        Err(e) => flow_error(&bank, &state, auth_id, e),
    }
}

pub async fn accounts(State(bank): State<Arc<Bank>>, params: Params, body: Body) -> Response {
    let pairs = form(body).await;
    let auth_id = params.get(0);
    let now = bank.now();
    let mut state = bank.lock();
    let Some(auth) = state.authorisations.get(auth_id) else {
        return not_found(&bank);
    };
    if auth.status.is_final() || auth.step != Step::ChooseAccounts {
        return render(&bank, &state, auth_id, None);
    }
    let mut chosen: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "account")
        .map(|(_, v)| v.clone())
        .collect();
    if auth.choose_single_account {
        chosen.truncate(1);
    }
    if chosen.is_empty() {
        return render(&bank, &state, auth_id, Some("Choose at least one account."));
    }
    let outcome = flows::finalise(&mut state, auth_id, now, Some(chosen));
    finish(&bank, &state, auth_id, &outcome)
}

pub async fn cancel(State(bank): State<Arc<Bank>>, params: Params) -> Response {
    let auth_id = params.get(0);
    let now = bank.now();
    let mut state = bank.lock();
    let Some(auth) = state.authorisations.get(auth_id) else {
        return not_found(&bank);
    };
    if auth.status.is_final() {
        return render(&bank, &state, auth_id, None);
    }
    let outcome = flows::fail(&mut state, auth_id, now, "Cancelled by the customer.");
    match outcome.redirect {
        Some(url) => see_other(&url),
        None => render(&bank, &state, auth_id, Some(&outcome.message)),
    }
}
