//! The effects of an ended authorisation on what it authorised: a Berlin Group consent's grants
//! (and the expiry of the PSU's former recurring consent), and the UK authorization code or
//! OAuth error the PSU carries back to the TPP.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::BankState;
use super::consent::{ConsentStatus, Grant, ListAccess};
use super::uk::AuthCode;

pub(super) fn approve_bg_consent(
    state: &mut BankState,
    id: &str,
    psu: &'static str,
    book_index: usize,
    chosen: &[String],
    now: OffsetDateTime,
) {
    let Some(consent) = state.consents.get(id).cloned() else {
        return;
    };
    let book_accounts: Vec<(String, String)> = state
        .books
        .get(book_index)
        .map(|b| {
            b.accounts
                .iter()
                .map(|a| (a.resource_id.clone(), a.iban.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
    let mut list_access = ListAccess::default();
    let req = &consent.requested;
    if req.all_psd2.is_some() {
        for (rid, _) in &book_accounts {
            grants.insert(
                rid.clone(),
                Grant {
                    details: true,
                    balances: true,
                    transactions: true,
                },
            );
        }
    } else if req.is_bank_offered() {
        for rid in chosen {
            grants.insert(
                rid.clone(),
                Grant {
                    details: true,
                    balances: true,
                    transactions: true,
                },
            );
        }
    } else if req.available_accounts.is_some() || req.available_accounts_with_balance.is_some() {
        list_access = ListAccess {
            list_only: true,
            with_balance: req.available_accounts_with_balance.is_some(),
        };
    } else {
        for (rid, iban) in &book_accounts {
            let grant = Grant {
                details: req.accounts.contains(iban)
                    || req.balances.contains(iban)
                    || req.transactions.contains(iban),
                balances: req.balances.contains(iban),
                transactions: req.transactions.contains(iban),
            };
            if grant.details {
                grants.insert(rid.clone(), grant);
            }
        }
    }
    if consent.recurring {
        // Spec, POST /v1/consents: a former recurring consent of this PSU expires as soon as a
        // new recurring one is authorised.
        for other in state.consents.values_mut() {
            if other.id != id
                && other.recurring
                && other.psu == Some(psu)
                && other.status == ConsentStatus::Valid
            {
                other.status = ConsentStatus::Expired;
                other.last_action = now.date();
            }
        }
    }
    if let Some(c) = state.consents.get_mut(id) {
        c.status = ConsentStatus::Valid;
        c.psu = Some(psu);
        c.grants = grants;
        c.list_access = list_access;
        c.last_action = now.date();
    }
}

pub(super) fn issue_code(
    state: &mut BankState,
    auth: &super::sca::Authorisation,
    consent_id: &str,
    now: OffsetDateTime,
) -> Option<String> {
    let oauth = auth.oauth.as_ref()?;
    let code = state.next_id("code-");
    state.codes.insert(
        code.clone(),
        AuthCode {
            client_id: oauth.client_id.clone(),
            redirect_uri: oauth.redirect_uri.clone(),
            consent_id: consent_id.to_string(),
            scopes: oauth.scope.split_whitespace().map(str::to_string).collect(),
            code_challenge: oauth.code_challenge.clone(),
            code_challenge_method: oauth.code_challenge_method.clone(),
            expires_at: now + Duration::minutes(10),
            nonce: oauth.nonce.clone(),
            state: oauth.state.clone(),
        },
    );
    let mut url = url::Url::parse(&oauth.redirect_uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(s) = &oauth.state {
            query.append_pair("state", s);
        }
    }
    Some(url.to_string())
}

pub(super) fn oauth_error(auth: &super::sca::Authorisation, reason: &str) -> Option<String> {
    let oauth = auth.oauth.as_ref()?;
    let mut url = url::Url::parse(&oauth.redirect_uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", "access_denied");
        query.append_pair("error_description", reason);
        if let Some(s) = &oauth.state {
            query.append_pair("state", s);
        }
    }
    Some(url.to_string())
}
