//! What happens when a PSU logs in, enters the code, picks accounts, cancels or runs out of
//! attempts: the consent or payment behind the authorisation changes, and the PSU is sent back
//! to the TPP. Shared by the redirect pages, the decoupled app page and the admin shortcuts.

use time::OffsetDateTime;

use super::BankState;
use super::consent::ConsentStatus;
use super::effects::{approve_bg_consent, issue_code, oauth_error};
use super::sca::{AuthTarget, ScaApproach, ScaStatus, Step};
use super::uk::UkConsentStatus;
use crate::data::users::{self, ONE_TIME_CODE, PASSWORD};

/// Where the PSU goes after the authorisation ended (None: stay on the bank's page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: bool,
    pub redirect: Option<String>,
    pub message: String,
}

/// Result of one login or code attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Go on to the next step.
    Next(Step),
    /// Wrong input; this many attempts are left.
    Wrong { left: u8 },
    /// The authorisation is over.
    Finished(Outcome),
}

/// Why a flow operation could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowError {
    UnknownAuthorisation,
    AlreadyFinished,
    WrongStep,
}

fn check_open(state: &BankState, auth_id: &str) -> Result<(), FlowError> {
    let auth = state
        .authorisations
        .get(auth_id)
        .ok_or(FlowError::UnknownAuthorisation)?;
    if auth.status.is_final() {
        return Err(FlowError::AlreadyFinished);
    }
    Ok(())
}

/// Checks username and password, and that this user may approve what is asked.
pub fn login(
    state: &mut BankState,
    auth_id: &str,
    username: &str,
    password: &str,
    now: OffsetDateTime,
) -> Result<Attempt, FlowError> {
    check_open(state, auth_id)?;
    let step = state.authorisations.get(auth_id).map(|a| a.step);
    if step != Some(Step::Login) {
        return Err(FlowError::WrongStep);
    }
    let user = users::find(username.trim()).filter(|_| password == PASSWORD);
    let Some(user) = user.filter(|u| state.book_of(u.username).is_some()) else {
        return Ok(wrong_attempt(state, auth_id, now));
    };
    if let Some(problem) = ownership_problem(state, auth_id, user.username) {
        return Ok(Attempt::Finished(fail(state, auth_id, now, &problem)));
    }
    if let Some(auth) = state.authorisations.get_mut(auth_id) {
        auth.psu = Some(user.username);
        auth.status = ScaStatus::PsuAuthenticated;
        auth.step = Step::OneTimeCode;
    }
    Ok(Attempt::Next(Step::OneTimeCode))
}

/// Checks the one-time code; finalises unless accounts still need choosing.
pub fn one_time_code(
    state: &mut BankState,
    auth_id: &str,
    code: &str,
    now: OffsetDateTime,
) -> Result<Attempt, FlowError> {
    check_open(state, auth_id)?;
    let Some(auth) = state.authorisations.get(auth_id) else {
        return Err(FlowError::UnknownAuthorisation);
    };
    let decoupled = auth.approach == ScaApproach::Decoupled;
    if !decoupled && auth.step != Step::OneTimeCode {
        return Err(FlowError::WrongStep);
    }
    if code.trim() != ONE_TIME_CODE {
        return Ok(wrong_attempt(state, auth_id, now));
    }
    let choose = auth.choose_accounts && !decoupled;
    if choose {
        if let Some(auth) = state.authorisations.get_mut(auth_id) {
            auth.step = Step::ChooseAccounts;
        }
        return Ok(Attempt::Next(Step::ChooseAccounts));
    }
    Ok(Attempt::Finished(finalise(state, auth_id, now, None)))
}

fn wrong_attempt(state: &mut BankState, auth_id: &str, now: OffsetDateTime) -> Attempt {
    let Some(auth) = state.authorisations.get_mut(auth_id) else {
        return Attempt::Wrong { left: 0 };
    };
    if auth.record_failure() {
        Attempt::Finished(fail(state, auth_id, now, "Too many failed attempts."))
    } else {
        Attempt::Wrong {
            left: super::sca::MAX_FAILURES.saturating_sub(auth.failures),
        }
    }
}

/// A reason the logged-in user cannot approve this (accounts that are not theirs).
fn ownership_problem(state: &BankState, auth_id: &str, username: &str) -> Option<String> {
    let auth = state.authorisations.get(auth_id)?;
    let user_book = state.book_of(username)?;
    let owns = |iban: &str| {
        state
            .find_by_identifier(iban)
            .is_some_and(|(u, _)| u == user_book)
    };
    match &auth.target {
        AuthTarget::BgConsent(id) => {
            let consent = state.consents.get(id)?;
            let foreign: Vec<&str> = consent
                .requested
                .named_ibans()
                .into_iter()
                .filter(|i| !owns(i))
                .collect();
            (!foreign.is_empty())
                .then(|| format!("These accounts are not yours: {}", foreign.join(", ")))
        }
        AuthTarget::BgPayment(id) => {
            let payment = state.payments.get(id)?;
            let iban = payment.debtor_iban.as_deref()?;
            (!owns(iban)).then(|| format!("The account {iban} is not yours."))
        }
        AuthTarget::UkPaymentConsent(id) => {
            let consent = state.uk_payment_consents.get(id)?;
            consent.debtor.and_then(|(u, _)| {
                (u != user_book)
                    .then(|| "The debtor account of this payment is not yours.".to_string())
            })
        }
        AuthTarget::UkAccountConsent(_) => None,
    }
}

/// Approves: the consent becomes valid / the payment is executed, and the TPP learns of it.
pub fn finalise(
    state: &mut BankState,
    auth_id: &str,
    now: OffsetDateTime,
    chosen: Option<Vec<String>>,
) -> Outcome {
    let Some(auth) = state.authorisations.get(auth_id).cloned() else {
        return Outcome {
            success: false,
            redirect: None,
            message: "Unknown authorisation.".into(),
        };
    };
    let Some(psu) = auth.psu else {
        return fail(state, auth_id, now, "No user authenticated.");
    };
    let Some(book_index) = state.book_of(psu) else {
        return fail(state, auth_id, now, "Not a customer.");
    };
    let own_ids: Vec<String> = state
        .books
        .get(book_index)
        .map(|b| b.accounts.iter().map(|a| a.resource_id.clone()).collect())
        .unwrap_or_default();
    let chosen: Vec<String> = match chosen {
        Some(list) => list.into_iter().filter(|id| own_ids.contains(id)).collect(),
        None => own_ids,
    };
    if auth.choose_accounts && chosen.is_empty() {
        return fail(state, auth_id, now, "No account was chosen.");
    }
    if let Some(a) = state.authorisations.get_mut(auth_id) {
        a.status = ScaStatus::Finalised;
        a.step = Step::Done;
    }
    let mut message = "Approved.".to_string();
    let redirect = match &auth.target {
        AuthTarget::BgConsent(id) => {
            approve_bg_consent(state, id, psu, book_index, &chosen, now);
            auth.redirect_ok.clone()
        }
        AuthTarget::BgPayment(id) => {
            if let Some(p) = state.payments.get_mut(id) {
                p.psu = Some(psu);
            }
            if state.execute_payment(id, now).is_err() {
                message = "Approved, but the payment was rejected: insufficient funds.".into();
            }
            auth.redirect_ok.clone()
        }
        AuthTarget::UkAccountConsent(id) => {
            if let Some(c) = state.uk_account_consents.get_mut(id) {
                c.status = UkConsentStatus::Authorised;
                c.status_updated_at = now;
                c.psu = Some(psu);
                c.accounts = chosen;
            }
            issue_code(state, &auth, id, now)
        }
        AuthTarget::UkPaymentConsent(id) => {
            let first = chosen.first().and_then(|rid| state.find_account(rid));
            if let Some(c) = state.uk_payment_consents.get_mut(id) {
                c.status = UkConsentStatus::Authorised;
                c.status_updated_at = now;
                c.psu = Some(psu);
                if c.debtor.is_none() {
                    c.debtor = first;
                }
            }
            issue_code(state, &auth, id, now)
        }
    };
    if let Some(a) = state.authorisations.get_mut(auth_id) {
        a.outcome_url.clone_from(&redirect);
    }
    Outcome {
        success: true,
        redirect,
        message,
    }
}

/// Fails the authorisation: the consent is rejected / the payment rejected; the TPP hears so.
pub fn fail(state: &mut BankState, auth_id: &str, now: OffsetDateTime, reason: &str) -> Outcome {
    let Some(auth) = state.authorisations.get_mut(auth_id) else {
        return Outcome {
            success: false,
            redirect: None,
            message: reason.into(),
        };
    };
    auth.status = ScaStatus::Failed;
    auth.step = Step::Done;
    let auth = auth.clone();
    let redirect = match &auth.target {
        AuthTarget::BgConsent(id) => {
            if let Some(c) = state.consents.get_mut(id)
                && c.status == ConsentStatus::Received
            {
                c.status = ConsentStatus::Rejected;
                c.last_action = now.date();
            }
            auth.redirect_nok
                .clone()
                .or_else(|| auth.redirect_ok.clone())
        }
        AuthTarget::BgPayment(id) => {
            if let Some(p) = state.payments.get_mut(id) {
                p.reject(now);
            }
            auth.redirect_nok
                .clone()
                .or_else(|| auth.redirect_ok.clone())
        }
        AuthTarget::UkAccountConsent(id) => {
            if let Some(c) = state.uk_account_consents.get_mut(id) {
                c.status = UkConsentStatus::Rejected;
                c.status_updated_at = now;
            }
            oauth_error(&auth, reason)
        }
        AuthTarget::UkPaymentConsent(id) => {
            if let Some(c) = state.uk_payment_consents.get_mut(id) {
                c.status = UkConsentStatus::Rejected;
                c.status_updated_at = now;
            }
            oauth_error(&auth, reason)
        }
    };
    if let Some(a) = state.authorisations.get_mut(auth_id) {
        a.outcome_url.clone_from(&redirect);
    }
    Outcome {
        success: false,
        redirect,
        message: reason.into(),
    }
}
