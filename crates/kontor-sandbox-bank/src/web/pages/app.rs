//! The bank's "mobile app" for decoupled SCA: the PSU logs in at `/app`, sees what waits for
//! approval, and approves (with the one-time code) or rejects each item.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::Duration;

use super::render::{error_block, escape, labels, page};
use super::sca::describe;
use crate::data::users::{self, PASSWORD};
use crate::state::flows::{self, Attempt};
use crate::state::sca::ScaApproach;
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, field, form_pairs, read_body};

fn login_page(bank: &Bank, error: Option<&str>) -> Response {
    let l = labels(&bank.config.theme.language);
    let content = format!(
        r#"{err}<form id="app-login-form" method="post" action="/{id}/app/login">
<label for="username">{u}</label><input type="text" id="username" name="username" autocomplete="username" autofocus>
<label for="password">{p}</label><input type="password" id="password" name="password" autocomplete="current-password">
<button id="submit" class="primary" type="submit">{c}</button></form>"#,
        err = error_block(error),
        id = bank.id(),
        u = l.username,
        p = l.password,
        c = l.continue_
    );
    page(bank, "app-login", l.app_title, &content).into_response()
}

/// Lists the user's decoupled authorisations that wait for a decision.
fn list_page(
    bank: &Bank,
    state: &BankState,
    user: &str,
    session: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let l = labels(&bank.config.theme.language);
    let mut items = String::new();
    for auth in state.authorisations.values() {
        if auth.approach != ScaApproach::Decoupled
            || auth.status.is_final()
            || auth.psu != Some(user_static(user))
        {
            continue;
        }
        let id = escape(&auth.id);
        let action = format!("/{}/app/authorisations/{id}", bank.id());
        items.push_str(&format!(
            r#"<section class="approval" id="approval-{id}" data-authorisation="{id}">
<p class="summary">{summary}</p>
<form id="approve-{id}" method="post" action="{action}/approve">
<input type="hidden" name="session" value="{session}">
<label for="otp-{id}">{otp}</label><input type="text" id="otp-{id}" name="otp" inputmode="numeric" autocomplete="one-time-code">
<button id="approve-button-{id}" class="primary" type="submit">{approve}</button></form>
<form id="reject-{id}" method="post" action="{action}/reject"><input type="hidden" name="session" value="{session}">
<button id="reject-button-{id}" class="secondary" type="submit">{reject}</button></form></section>"#,
            summary = escape(&describe(state, &auth.target, &bank.config.theme.language)),
            session = escape(session),
            otp = l.otp,
            approve = l.approve,
            reject = l.reject,
        ));
    }
    if items.is_empty() {
        items = format!(r#"<p id="nothing-pending">{}</p>"#, l.nothing_pending);
    }
    let notice = notice.map_or_else(String::new, |n| {
        format!(r#"<p id="result" class="summary">{}</p>"#, escape(n))
    });
    page(
        bank,
        "app-list",
        l.app_title,
        &format!("{notice}{}{items}", error_block(error)),
    )
    .into_response()
}

fn user_static(name: &str) -> &'static str {
    users::find(name).map_or("", |u| u.username)
}

pub async fn show(State(bank): State<Arc<Bank>>) -> Response {
    login_page(&bank, None)
}

pub async fn login(State(bank): State<Arc<Bank>>, body: Body) -> Response {
    let pairs = read_body(body)
        .await
        .map(|b| form_pairs(&b))
        .unwrap_or_default();
    let username = field(&pairs, "username").unwrap_or("").trim();
    let password = field(&pairs, "password").unwrap_or("");
    let l = labels(&bank.config.theme.language);
    let now = bank.now();
    let mut state = bank.lock();
    let Some(user) = users::find(username)
        .filter(|u| password == PASSWORD && state.book_of(u.username).is_some())
    else {
        drop(state);
        return login_page(&bank, Some(l.wrong_login));
    };
    let session = state.next_id("app-");
    state.app_sessions.insert(
        session.clone(),
        (user.username, now + Duration::minutes(30)),
    );
    list_page(&bank, &state, user.username, &session, None, None)
}

/// The user of a live app session.
fn session_user(
    state: &BankState,
    session: &str,
    now: time::OffsetDateTime,
) -> Option<&'static str> {
    state
        .app_sessions
        .get(session)
        .filter(|(_, expires)| *expires > now)
        .map(|(user, _)| *user)
}

pub async fn decide(
    State(bank): State<Arc<Bank>>,
    params: Params,
    body: Body,
    approve: bool,
) -> Response {
    let pairs = read_body(body)
        .await
        .map(|b| form_pairs(&b))
        .unwrap_or_default();
    let session = field(&pairs, "session").unwrap_or("").to_string();
    let auth_id = params.get(0).to_string();
    let now = bank.now();
    let l = labels(&bank.config.theme.language);
    let mut state = bank.lock();
    let Some(user) = session_user(&state, &session, now) else {
        drop(state);
        return (
            StatusCode::UNAUTHORIZED,
            login_page(&bank, Some("Your session has ended. Please log in again.")),
        )
            .into_response();
    };
    let owned = state
        .authorisations
        .get(&auth_id)
        .is_some_and(|a| a.psu == Some(user) && a.approach == ScaApproach::Decoupled);
    if !owned {
        return list_page(
            &bank,
            &state,
            user,
            &session,
            None,
            Some("Unknown approval."),
        );
    }
    if !approve {
        let outcome = flows::fail(&mut state, &auth_id, now, "Rejected in the app.");
        return list_page(&bank, &state, user, &session, Some(&outcome.message), None);
    }
    match flows::one_time_code(
        &mut state,
        &auth_id,
        field(&pairs, "otp").unwrap_or(""),
        now,
    ) {
        Ok(Attempt::Finished(outcome)) if outcome.success => {
            list_page(&bank, &state, user, &session, Some(&outcome.message), None)
        }
        Ok(Attempt::Finished(outcome)) => {
            list_page(&bank, &state, user, &session, None, Some(&outcome.message))
        }
        Ok(Attempt::Wrong { left }) => {
            let text = format!("{} {}: {left}", l.wrong_code, l.attempts_left);
            list_page(&bank, &state, user, &session, None, Some(&text))
        }
        Ok(Attempt::Next(_)) | Err(_) => list_page(
            &bank,
            &state,
            user,
            &session,
            None,
            Some("This approval is no longer open."),
        ),
    }
}

pub async fn approve(state: State<Arc<Bank>>, params: Params, body: Body) -> Response {
    decide(state, params, body, true).await
}

pub async fn reject(state: State<Arc<Bank>>, params: Params, body: Body) -> Response {
    decide(state, params, body, false).await
}
