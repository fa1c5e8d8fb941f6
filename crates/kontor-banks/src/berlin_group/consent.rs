//! The consent's life at a NextGenPSD2 bank: creation with its SCA start, the user's return,
//! status polling, and deletion.

use std::collections::BTreeMap;

use reqwest::Method;

use super::wire::{
    AccountAccess, AuthorisationStarted, ConsentCreated, ConsentInformation, ConsentStatus,
    Consents, Links,
};
use super::{BerlinGroup, NOK_PARAM};
use crate::http::{Body, Outgoing, Retry};
use crate::support::dates::{date, format_date};
use crate::support::urls::{browser_url, resolve_link};
use crate::{
    BankError, Callback, ConsentOutcome, ConsentRequest, ConsentSession, ConsentStarted,
    ScaPreference, ScaStep,
};

/// Where the session keeps the `state` the consent was started with.
const STATE_KEY: &str = "state";

impl BerlinGroup {
    pub(super) async fn start(
        &self,
        request: &ConsentRequest,
    ) -> Result<ConsentStarted, BankError> {
        // A bank-offered consent (empty lists): the bank shows the user their accounts to pick
        // from, and the consent then covers those, for what was asked.
        let access = AccountAccess {
            accounts: Some(Vec::new()),
            balances: request.access.balances.then(Vec::new),
            transactions: request.access.transactions.then(Vec::new),
        };
        let body = Consents {
            access,
            recurring_indicator: true,
            valid_until: format_date(request.valid_until),
            frequency_per_day: request.frequency_per_day,
            combined_service_indicator: false,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|_| BankError::protocol("cannot encode the consent request"))?;

        let psu_id = match &request.sca {
            ScaPreference::Decoupled { psu_id } if self.profile.decoupled_sca => Some(psu_id),
            _ => None,
        };
        let mut out = Outgoing::new(
            Method::POST,
            self.url(&["v1", "consents"])?,
            "/v1/consents",
            Retry::Never,
        );
        out.headers = self.consent_sca_headers(request, psu_id.map(String::as_str))?;
        out.body = Some(Body::Json(body));
        let answer = self.transport.send(out).await?;
        let approach = answer
            .header("aspsp-sca-approach")
            .map(str::to_ascii_uppercase);
        let created: ConsentCreated = answer.json("consent creation")?;

        let mut session = ConsentSession {
            consent_id: created.consent_id,
            redirect_uri: Some(request.redirect_uri.to_string()),
            extra: BTreeMap::from([(STATE_KEY.to_owned(), request.state.clone())]),
            ..ConsentSession::default()
        };
        session.authorisation_id = authorisation_id(&created.links);
        let decoupled = approach.as_deref() == Some("DECOUPLED");

        if let Some(sca) = sca_step(&created.links, decoupled, created.psu_message.as_ref())? {
            return Ok(ConsentStarted { session, sca });
        }
        // The bank wants the authorisation started explicitly (its choice, or it always does).
        let Some(start) = created.links.get("startAuthorisation") else {
            return Err(BankError::protocol(
                "the bank offers only SCA approaches the hub does not support (embedded, OAuth2)",
            ));
        };
        let mut out = Outgoing::new(
            Method::POST,
            resolve_link(&self.profile.base_url, &start.href)?,
            "/v1/consents/{consentId}/authorisations",
            Retry::Never,
        );
        out.headers = self.consent_sca_headers(request, psu_id.map(String::as_str))?;
        let answer = self.transport.send(out).await?;
        let approach = answer
            .header("aspsp-sca-approach")
            .map(str::to_ascii_uppercase);
        let started: AuthorisationStarted = answer.json("authorisation start")?;
        session.authorisation_id = Some(started.authorisation_id);
        let decoupled = decoupled || approach.as_deref() == Some("DECOUPLED");
        match sca_step(&started.links, decoupled, started.psu_message.as_ref())? {
            Some(sca) => Ok(ConsentStarted { session, sca }),
            None => Err(BankError::protocol(
                "the bank's authorisation offers no redirect or decoupled SCA",
            )),
        }
    }

    /// Headers of the requests that start SCA for a consent (see [`BerlinGroup::sca_headers`]).
    fn consent_sca_headers(
        &self,
        request: &ConsentRequest,
        psu_id: Option<&str>,
    ) -> Result<reqwest::header::HeaderMap, BankError> {
        self.sca_headers(
            &request.redirect_uri,
            &request.state,
            request.psu_ip,
            None,
            psu_id,
        )
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
        let failed = callback.get(NOK_PARAM) == Some("nok") || callback.get("error").is_some();
        let outcome = self.status(session).await?;
        // The bank may not have settled the consent's status yet when it sends the user back.
        // The negative redirect is the bank's answer that the user did not authorise: the same
        // whether they pressed cancel or ran out of attempts.
        Ok(match outcome {
            ConsentOutcome::Pending | ConsentOutcome::Rejected { .. } if failed => {
                ConsentOutcome::Rejected {
                    reason: "the user cancelled or failed authentication at the bank".to_owned(),
                    by_user: true,
                }
            }
            other => other,
        })
    }

    pub(super) async fn status(
        &self,
        session: &ConsentSession,
    ) -> Result<ConsentOutcome, BankError> {
        let mut out = Outgoing::get(
            self.url(&["v1", "consents", &session.consent_id, "status"])?,
            "/v1/consents/{consentId}/status",
        );
        out.headers = self.headers(None, None)?;
        let status: ConsentStatus = match self.transport.send(out).await {
            Ok(answer) => answer.json("consent status")?,
            Err(err) => return gone(err),
        };
        match status.consent_status.as_str() {
            "valid" => {
                let mut out = Outgoing::get(
                    self.url(&["v1", "consents", &session.consent_id])?,
                    "/v1/consents/{consentId}",
                );
                out.headers = self.headers(None, None)?;
                let info: ConsentInformation = match self.transport.send(out).await {
                    Ok(answer) => answer.json("consent")?,
                    Err(err) => return gone(err),
                };
                match info.consent_status.as_str() {
                    "valid" => Ok(ConsentOutcome::Active {
                        valid_until: Some(date(&info.valid_until, "consent validUntil")?),
                    }),
                    // It changed between the two reads.
                    other => map_status(other),
                }
            }
            other => map_status(other),
        }
    }

    pub(super) async fn delete(&self, session: &ConsentSession) -> Result<(), BankError> {
        // DELETE is idempotent, so it is retried like a read.
        let mut out = Outgoing::new(
            Method::DELETE,
            self.url(&["v1", "consents", &session.consent_id])?,
            "/v1/consents/{consentId}",
            Retry::Safe,
        );
        out.headers = self.headers(None, None)?;
        match self.transport.send(out).await {
            Ok(_) => Ok(()),
            // Unknown, expired or already terminated: nothing is left to withdraw.
            Err(
                BankError::ConsentInvalid { .. }
                | BankError::ConsentExpired
                | BankError::Rejected { status: 404, .. },
            ) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The SCA step the links offer, if any: a redirect link, or the decoupled approach.
pub(super) fn sca_step(
    links: &Links,
    decoupled: bool,
    psu_message: Option<&String>,
) -> Result<Option<ScaStep>, BankError> {
    if let Some(redirect) = links.get("scaRedirect") {
        return Ok(Some(ScaStep::Redirect {
            url: browser_url(&redirect.href)?,
        }));
    }
    if decoupled {
        return Ok(Some(ScaStep::Decoupled {
            message: psu_message.cloned(),
        }));
    }
    Ok(None)
}

/// The authorisation's id, the last segment of `scaStatus`
/// (`…/consents/{consentId}/authorisations/{authorisationId}`).
pub(super) fn authorisation_id(links: &Links) -> Option<String> {
    let href = &links.get("scaStatus")?.href;
    let path = href.split(['?', '#']).next()?;
    let (before, id) = path.trim_end_matches('/').rsplit_once('/')?;
    (before.ends_with("/authorisations") && !id.is_empty()).then(|| id.to_owned())
}

fn map_status(status: &str) -> Result<ConsentOutcome, BankError> {
    Ok(match status {
        "received" | "partiallyAuthorised" => ConsentOutcome::Pending,
        "rejected" => ConsentOutcome::Rejected {
            reason: "the bank rejected the consent (authentication failed or was cancelled)"
                .to_owned(),
            by_user: false,
        },
        "expired" => ConsentOutcome::Expired,
        "revokedByPsu" | "terminatedByTpp" => ConsentOutcome::Revoked,
        "valid" => ConsentOutcome::Active { valid_until: None },
        _ => return Err(BankError::protocol("unknown consentStatus")),
    })
}

/// A consent the bank no longer knows (or says is expired) when asked for its status is an
/// answer, not a failure.
fn gone(err: BankError) -> Result<ConsentOutcome, BankError> {
    match err {
        BankError::ConsentExpired => Ok(ConsentOutcome::Expired),
        BankError::ConsentInvalid { code } if code == "CONSENT_UNKNOWN" => {
            Ok(ConsentOutcome::Revoked)
        }
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::berlin_group::wire::Href;

    fn links(pairs: &[(&str, &str)]) -> Links {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Href {
                        href: (*v).to_owned(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn authorisation_ids_come_from_the_sca_status_link() {
        let l = links(&[(
            "scaStatus",
            "https://b/v1/consents/c-1/authorisations/auth-9?x=1",
        )]);
        assert_eq!(authorisation_id(&l).as_deref(), Some("auth-9"));
        assert_eq!(
            authorisation_id(&links(&[("scaStatus", "https://b/v1/consents/c-1")])),
            None
        );
        assert_eq!(authorisation_id(&links(&[])), None);
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(map_status("received").unwrap(), ConsentOutcome::Pending);
        assert_eq!(
            map_status("partiallyAuthorised").unwrap(),
            ConsentOutcome::Pending
        );
        assert!(matches!(
            map_status("rejected").unwrap(),
            ConsentOutcome::Rejected { .. }
        ));
        assert_eq!(map_status("expired").unwrap(), ConsentOutcome::Expired);
        assert_eq!(map_status("revokedByPsu").unwrap(), ConsentOutcome::Revoked);
        assert_eq!(
            map_status("terminatedByTpp").unwrap(),
            ConsentOutcome::Revoked
        );
        assert!(map_status("exploded").is_err());
    }

    #[test]
    fn sca_steps() {
        let redirect = links(&[("scaRedirect", "https://bank/sca/1")]);
        assert!(matches!(
            sca_step(&redirect, false, None).unwrap(),
            Some(ScaStep::Redirect { .. })
        ));
        let message = "Open your app".to_owned();
        assert_eq!(
            sca_step(&links(&[]), true, Some(&message)).unwrap(),
            Some(ScaStep::Decoupled {
                message: Some(message)
            })
        );
        assert_eq!(sca_step(&links(&[]), false, None).unwrap(), None);
        assert!(sca_step(&links(&[("scaRedirect", "/relative")]), false, None).is_err());
    }
}
