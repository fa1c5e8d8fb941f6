//! The account-access consent at a UK bank: creation and the authorisation URL, the user's
//! return (code exchange), its status, and its deletion. Consent resources are managed with the
//! hub's client-credentials token.

use std::collections::BTreeMap;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use time::OffsetDateTime;

use super::oauth::{ACCOUNTS, Authorisation, bearer};
use super::wire::{ConsentData, Empty, ReadConsent, ReadConsentData, ReadConsentResponse};
use super::{UkOpenBanking, interaction_id};
use crate::http::{Body, Outgoing, Retry, put};
use crate::support::dates::{date_time, format_date};
use crate::support::ids::random_token;
use crate::{
    Access, BankError, Callback, ConsentOutcome, ConsentRequest, ConsentSession, ConsentStarted,
    ScaPreference, ScaStep,
};

const STATE_KEY: &str = "state";
const NONCE_KEY: &str = "nonce";
const CONSENTS: &str = "/open-banking/v3.1/aisp/account-access-consents";
const CONSENT: &str = "/open-banking/v3.1/aisp/account-access-consents/{ConsentId}";

/// The permissions for what the user shares. Account permissions are always asked for: without
/// them there is no account to read balances or transactions of. Transaction permissions come
/// as the standard pairs them: Basic and Detail, and both Credits and Debits.
fn permissions(access: Access) -> Vec<&'static str> {
    let mut permissions = vec!["ReadAccountsBasic", "ReadAccountsDetail"];
    if access.balances {
        permissions.push("ReadBalances");
    }
    if access.transactions {
        permissions.extend([
            "ReadTransactionsBasic",
            "ReadTransactionsDetail",
            "ReadTransactionsCredits",
            "ReadTransactionsDebits",
        ]);
    }
    permissions
}

impl UkOpenBanking {
    pub(super) async fn start(
        &self,
        request: &ConsentRequest,
    ) -> Result<ConsentStarted, BankError> {
        if matches!(request.sca, ScaPreference::Decoupled { .. }) {
            // Decoupled authorisation (CIBA) is a separate profile of the standard that the
            // hub does not implement: the user is redirected instead.
            tracing::info!(bank.id = %self.profile.id, "decoupled SCA not offered; using redirect");
        }
        let body = ReadConsent {
            data: ReadConsentData {
                permissions: permissions(request.access),
                // The last day of access, to its end (UTC).
                expiration_date_time: Some(format!(
                    "{}T23:59:59+00:00",
                    format_date(request.valid_until)
                )),
                // No TransactionFromDateTime: the hub asks for all the history the bank has.
            },
            risk: Empty {},
        };
        let body = serde_json::to_vec(&body)
            .map_err(|_| BankError::protocol("cannot encode the consent request"))?;
        let interaction = interaction_id(None);
        let url = self.aisp(&["account-access-consents"])?;
        let answer = self
            .with_client_token(ACCOUNTS, |token| {
                let mut out = Outgoing::new(Method::POST, url.clone(), CONSENTS, Retry::Never);
                out.headers = consent_headers(token, &interaction)?;
                if let Some(ip) = request.psu_ip {
                    put(
                        &mut out.headers,
                        "x-fapi-customer-ip-address",
                        &ip.to_string(),
                    )?;
                }
                out.body = Some(Body::Json(body.clone()));
                Ok(out)
            })
            .await?;
        let created: ReadConsentResponse = answer.json("account access consent")?;
        let consent_id = created.data.consent_id;

        let verifier = random_token(64);
        let nonce = random_token(24);
        let url = self
            .authorisation_url(&Authorisation {
                redirect_uri: &request.redirect_uri,
                state: &request.state,
                scope: "openid accounts",
                intent_id: &consent_id,
                verifier: &verifier,
                nonce: &nonce,
            })
            .await?;
        let session = ConsentSession {
            consent_id,
            pkce_verifier: Some(verifier),
            redirect_uri: Some(request.redirect_uri.to_string()),
            extra: BTreeMap::from([
                (STATE_KEY.to_owned(), request.state.clone()),
                (NONCE_KEY.to_owned(), nonce),
            ]),
            ..ConsentSession::default()
        };
        Ok(ConsentStarted {
            session,
            sca: ScaStep::Redirect { url },
        })
    }

    pub(super) async fn complete(
        &self,
        session: &mut ConsentSession,
        callback: &Callback,
    ) -> Result<ConsentOutcome, BankError> {
        if let (Some(expected), Some(got)) = (session.extra.get(STATE_KEY), callback.get("state"))
            && expected != got
        {
            return Err(BankError::protocol(
                "the callback's state does not belong to this consent",
            ));
        }
        if let Some(error) = callback.get("error") {
            // RFC 6749 §4.1.2.1: `access_denied` when the user cancelled or failed to
            // authenticate; the code is an ASCII token and safe to keep.
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Ok(ConsentOutcome::Rejected {
                reason: format!("the bank answered `{code}` to the authorisation"),
                by_user: code == "access_denied",
            });
        }
        let code = callback
            .get("code")
            .ok_or_else(|| BankError::protocol("the callback has neither a code nor an error"))?;
        self.exchange_code(session, code).await?;
        self.status(session).await
    }

    pub(super) async fn status(
        &self,
        session: &ConsentSession,
    ) -> Result<ConsentOutcome, BankError> {
        match self.fetch_consent(&session.consent_id).await {
            Ok(data) => outcome(&data, OffsetDateTime::now_utc()),
            Err(BankError::Rejected { code, .. }) if code == "UK.OBIE.Resource.NotFound" => {
                Ok(ConsentOutcome::Revoked)
            }
            Err(err) => Err(err),
        }
    }

    pub(super) async fn fetch_consent(&self, consent_id: &str) -> Result<ConsentData, BankError> {
        let url = self.aisp(&["account-access-consents", consent_id])?;
        let interaction = interaction_id(None);
        let answer = self
            .with_client_token(ACCOUNTS, |token| {
                let mut out = Outgoing::get(url.clone(), CONSENT);
                out.headers = consent_headers(token, &interaction)?;
                Ok(out)
            })
            .await?;
        Ok(answer
            .json::<ReadConsentResponse>("account access consent")?
            .data)
    }

    pub(super) async fn delete(&self, session: &ConsentSession) -> Result<(), BankError> {
        let url = self.aisp(&["account-access-consents", &session.consent_id])?;
        let interaction = interaction_id(None);
        let result = self
            .with_client_token(ACCOUNTS, |token| {
                // DELETE is idempotent, so it is retried like a read.
                let mut out = Outgoing::new(Method::DELETE, url.clone(), CONSENT, Retry::Safe);
                out.headers = consent_headers(token, &interaction)?;
                Ok(out)
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already revoked, rejected or unknown: nothing is left to withdraw.
            Err(BankError::ConsentInvalid { .. }) => Ok(()),
            Err(BankError::Rejected { code, .. }) if code == "UK.OBIE.Resource.NotFound" => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The headers of a request made with a bearer token (the hub's or the user's).
pub(super) fn consent_headers(token: &str, interaction: &str) -> Result<HeaderMap, BankError> {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, bearer(token)?);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    put(&mut headers, "x-fapi-interaction-id", interaction)?;
    Ok(headers)
}

/// The consent's status as an outcome. 3.1.11 has no `Expired` status: an authorised consent
/// past its `ExpirationDateTime` is expired.
fn outcome(data: &ConsentData, now: OffsetDateTime) -> Result<ConsentOutcome, BankError> {
    let expiry = data
        .expiration_date_time
        .as_deref()
        .map(|raw| date_time(raw, "consent ExpirationDateTime"))
        .transpose()?;
    Ok(match data.status.as_str() {
        "Authorised" => match expiry {
            Some(at) if at <= now => ConsentOutcome::Expired,
            Some(at) => ConsentOutcome::Active {
                valid_until: Some(at.date()),
            },
            None => ConsentOutcome::Active { valid_until: None },
        },
        "AwaitingAuthorisation" => ConsentOutcome::Pending,
        "Rejected" => ConsentOutcome::Rejected {
            reason: "the bank rejected the consent (authentication failed or was cancelled)"
                .to_owned(),
            by_user: false,
        },
        "Revoked" => ConsentOutcome::Revoked,
        "Expired" => ConsentOutcome::Expired,
        _ => return Err(BankError::protocol("unknown consent Status")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn data(status: &str, expiry: Option<&str>) -> ConsentData {
        ConsentData {
            consent_id: "c".into(),
            status: status.into(),
            expiration_date_time: expiry.map(str::to_owned),
        }
    }

    #[test]
    fn permissions_follow_access() {
        assert_eq!(
            permissions(Access::ALL),
            [
                "ReadAccountsBasic",
                "ReadAccountsDetail",
                "ReadBalances",
                "ReadTransactionsBasic",
                "ReadTransactionsDetail",
                "ReadTransactionsCredits",
                "ReadTransactionsDebits"
            ]
        );
        let only_accounts = Access {
            accounts: true,
            balances: false,
            transactions: false,
        };
        assert_eq!(
            permissions(only_accounts),
            ["ReadAccountsBasic", "ReadAccountsDetail"]
        );
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let now = datetime!(2026-03-02 09:00 UTC);
        assert_eq!(
            outcome(&data("Authorised", Some("2026-05-31T23:59:59+00:00")), now).unwrap(),
            ConsentOutcome::Active {
                valid_until: Some(time::macros::date!(2026 - 05 - 31))
            }
        );
        assert_eq!(
            outcome(&data("Authorised", Some("2026-03-02T08:00:00+00:00")), now).unwrap(),
            ConsentOutcome::Expired
        );
        assert_eq!(
            outcome(&data("AwaitingAuthorisation", None), now).unwrap(),
            ConsentOutcome::Pending
        );
        assert!(matches!(
            outcome(&data("Rejected", None), now).unwrap(),
            ConsentOutcome::Rejected { .. }
        ));
        assert_eq!(
            outcome(&data("Revoked", None), now).unwrap(),
            ConsentOutcome::Revoked
        );
        assert!(outcome(&data("Confused", None), now).is_err());
        assert!(outcome(&data("Authorised", Some("tomorrow")), now).is_err());
    }
}
