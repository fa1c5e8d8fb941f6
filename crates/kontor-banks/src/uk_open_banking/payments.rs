//! Domestic payments at a UK bank: the payment consent (hub's token, scope `payments`), the
//! user's authorisation (OAuth2 code with PKCE, scope `openid payments`), the submission of the
//! payment with the user's token, and the status of the one or the other.
//!
//! Exactly once. Both `POST`s carry an `x-idempotency-key`, which the standard makes the bank
//! honour for 24 hours (the same key returns the resource it created). The payment is submitted
//! with the hub's key itself, so the bank's records name the hub's payment; the consent with a
//! key derived from it ([`consent_idempotency_key`]), because the standard does not say whether
//! a bank scopes keys per endpoint, and a bank that does not would otherwise answer the
//! payment's `POST` with the consent. A consent also pays once at most: a consumed consent
//! refuses a second payment (`UK.OBIE.Resource.InvalidConsentStatus`).

use std::collections::BTreeMap;

use kontor_domain::payment::Iso20022Status;
use reqwest::Method;
use reqwest::header::HeaderMap;
use url::Url;

use super::client_auth::IdTokenCheck;
use super::consent::consent_headers;
use super::domestic::{consent_status, initiation, payment_status};
use super::oauth::{Authorisation, PAYMENTS};
use super::payer::payer;
use super::signing::detached;
use super::wire::{
    Domestic, DomesticConsent, DomesticConsentRequestData, DomesticConsentResponse, DomesticData,
    DomesticResponse,
};
use super::{UkOpenBanking, interaction_id};
use crate::http::{Body, Outgoing, Retry, put};
use crate::support::checks;
use crate::support::ids::{digest_token, random_token};
use crate::support::urls::endpoint;
use crate::{
    BankError, BankPaymentStatus, Callback, PaymentRequest, PaymentSession, PaymentStarted, ScaStep,
};

/// What the session keeps besides ids and tokens: the callback's `state`, the OpenID nonce, and
/// the consent's `Initiation` and `Risk` as sent (JSON), which the submission repeats exactly.
const STATE_KEY: &str = "state";
const NONCE_KEY: &str = "nonce";
const INITIATION_KEY: &str = "initiation";
const RISK_KEY: &str = "risk";

const CONSENTS: &str = "/open-banking/v3.1/pisp/domestic-payment-consents";
const CONSENT: &str = "/open-banking/v3.1/pisp/domestic-payment-consents/{ConsentId}";
const PAYMENTS_PATH: &str = "/open-banking/v3.1/pisp/domestic-payments";
const PAYMENT: &str = "/open-banking/v3.1/pisp/domestic-payments/{DomesticPaymentId}";

/// The `x-idempotency-key` of a payment's consent: `c-` and the first 38 characters of the
/// base64url SHA-256 of `payment-consent:{key}`, 40 in all. Stable for a key, never the key
/// itself (which submits the payment), and not a key the hub would choose.
pub fn consent_idempotency_key(idempotency_key: &str) -> String {
    format!(
        "c-{}",
        digest_token(&format!("payment-consent:{idempotency_key}"), 38)
    )
}

impl UkOpenBanking {
    /// `{base}/open-banking/v3.1/pisp/…`.
    pub(super) fn pisp(&self, segments: &[&str]) -> Result<Url, BankError> {
        let mut all = vec!["open-banking", "v3.1", "pisp"];
        all.extend_from_slice(segments);
        endpoint(&self.profile.base_url, &all)
    }

    fn sign(&self, body: &[u8]) -> Result<String, BankError> {
        let issuer = match self.signer.issuer() {
            Some(issuer) => issuer,
            None => self.client_id()?,
        };
        detached(self.signer.as_ref(), issuer, body)
    }

    pub(super) async fn initiate(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, BankError> {
        let initiation = serde_json::to_value(initiation(request)?)
            .map_err(|_| BankError::protocol("cannot encode the payment initiation"))?;
        let risk = serde_json::json!({});
        let body = serde_json::to_vec(&DomesticConsent {
            data: DomesticConsentRequestData {
                read_refund_account: "Yes",
                initiation: &initiation,
            },
            risk: &risk,
        })
        .map_err(|_| BankError::protocol("cannot encode the payment consent"))?;
        let signature = self.sign(&body)?;
        let key = consent_idempotency_key(request.idempotency_key.as_str());
        let interaction = interaction_id(None);
        let url = self.pisp(&["domestic-payment-consents"])?;
        let answer = self
            .with_client_token(PAYMENTS, |token| {
                let mut out = Outgoing::new(Method::POST, url.clone(), CONSENTS, Retry::Never);
                out.headers = pisp_post_headers(token, &key, &signature, &interaction)?;
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
        let created: DomesticConsentResponse = answer.json("domestic payment consent")?;

        let verifier = random_token(64);
        let nonce = random_token(24);
        let url = self
            .authorisation_url(&Authorisation {
                redirect_uri: &request.redirect_uri,
                state: &request.state,
                scope: "openid payments",
                intent_id: &created.data.consent_id,
                verifier: &verifier,
                nonce: &nonce,
            })
            .await?;
        let session = PaymentSession {
            consent_id: Some(created.data.consent_id),
            pkce_verifier: Some(verifier),
            redirect_uri: Some(request.redirect_uri.to_string()),
            extra: BTreeMap::from([
                (STATE_KEY.to_owned(), request.state.clone()),
                (NONCE_KEY.to_owned(), nonce),
                (INITIATION_KEY.to_owned(), initiation.to_string()),
                (RISK_KEY.to_owned(), risk.to_string()),
            ]),
            ..PaymentSession::default()
        };
        Ok(PaymentStarted {
            session,
            sca: ScaStep::Redirect { url },
            status: consent_status(&created.data.status),
        })
    }

    /// Refuses a callback that does not belong to this payment (its code is not exchanged).
    fn check_state(session: &PaymentSession, callback: &Callback) -> Result<(), BankError> {
        if let (Some(expected), Some(got)) = (session.extra.get(STATE_KEY), callback.get("state"))
            && expected != got
        {
            return Err(BankError::protocol(
                "the callback's state does not belong to this payment",
            ));
        }
        Ok(())
    }

    /// Exchanges the callback's code for the user's token and keeps it in the session; `false`
    /// when there is nothing to exchange (a token already, a submitted payment, no code, or a
    /// callback that reports an error).
    pub(super) async fn take_user_token(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
    ) -> Result<bool, BankError> {
        Self::check_state(session, callback)?;
        if callback.get("error").is_some()
            || session.payment_id.is_some()
            || session.access_token.is_some()
        {
            return Ok(false);
        }
        let Some(code) = callback.get("code") else {
            return Ok(false);
        };
        let verifier = session
            .pkce_verifier
            .clone()
            .ok_or_else(|| BankError::protocol("the session has no PKCE verifier"))?;
        let redirect_uri = session
            .redirect_uri
            .clone()
            .ok_or_else(|| BankError::protocol("the session has no redirect URI"))?;
        let check = IdTokenCheck {
            nonce: session.extra.get(NONCE_KEY).map(String::as_str),
            state: session.extra.get(STATE_KEY).map(String::as_str),
            intent_id: session.consent_id.as_deref(),
        };
        let tokens = self
            .code_grant(code, &verifier, &redirect_uri, check)
            .await?;
        session.access_token = Some(tokens.access_token);
        session.refresh_token = tokens.refresh_token;
        session.pkce_verifier = None;
        Ok(true)
    }

    pub(super) async fn complete_submission(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
        idempotency_key: &str,
    ) -> Result<BankPaymentStatus, BankError> {
        Self::check_state(session, callback)?;
        if let Some(error) = callback.get("error") {
            // RFC 6749 §4.1.2.1: `access_denied` when the user cancelled or failed to
            // authenticate. The bank rejects the consent; the code is an ASCII token.
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Ok(BankPaymentStatus {
                verbatim: "Rejected".to_owned(),
                iso: Some(Iso20022Status::Rejected),
                reason: Some(format!("the bank answered `{code}` to the authorisation")),
            });
        }
        // Submitted already (this is a repeat after the answer was saved): just read it.
        if session.payment_id.is_some() {
            return self.submission_status(session).await;
        }
        checks::idempotency_key(idempotency_key)?;
        let consent_id = session
            .consent_id
            .clone()
            .ok_or_else(|| BankError::protocol("the payment session has no consent id"))?;
        // A repeat after a failed submission has the token already (the code was single-use);
        // otherwise the callback's code is exchanged now.
        match self.take_user_token(session, callback).await {
            Ok(_) => {}
            Err(err @ BankError::ConsentInvalid { .. }) => {
                return self.after_a_spent_code(session, err).await;
            }
            Err(err) => return Err(err),
        }
        // Resumed without the callback and without a token: nothing to submit with.
        if session.access_token.is_none() {
            return self.submission_status(session).await;
        }
        let (initiation, risk) = {
            let stored = |key: &str| -> Result<serde_json::Value, BankError> {
                session
                    .extra
                    .get(key)
                    .and_then(|raw| serde_json::from_str(raw).ok())
                    .ok_or_else(|| {
                        BankError::protocol("the payment session lost the consent's terms")
                    })
            };
            (stored(INITIATION_KEY)?, stored(RISK_KEY)?)
        };
        let body = serde_json::to_vec(&Domestic {
            data: DomesticData {
                consent_id: &consent_id,
                initiation: &initiation,
            },
            risk: &risk,
        })
        .map_err(|_| BankError::protocol("cannot encode the domestic payment"))?;
        let created = match self.post_payment(session, &body, idempotency_key).await {
            // The user's token lapsed (a completion resumed long after the user left): a new
            // one from the refresh token, and the same request again under the same key. A
            // bank refuses the refresh once the consent is consumed.
            Err(err @ BankError::Rejected { status: 401, .. }) => {
                match self.refresh_user_token(session).await {
                    Ok(()) => self.post_payment(session, &body, idempotency_key).await,
                    Err(_) => Err(err),
                }
            }
            other => other,
        };
        let created = match created {
            Ok(created) => created,
            // Without a token nothing can have been submitted since; something may have been
            // before, and the consent says so.
            Err(err @ BankError::Rejected { status: 401, .. }) => {
                return self.after_a_spent_code(session, err).await;
            }
            Err(err) => return Err(err),
        };
        if created.data.consent_id != consent_id {
            return Err(BankError::protocol(
                "the bank answered with a payment of another consent",
            ));
        }
        let status = payment_status(&created.data.status);
        let status = self
            .with_rejection_reason(&created.data.domestic_payment_id, status)
            .await;
        learn_payer(
            session,
            created.data.refund.as_ref(),
            created.data.debtor.as_ref(),
        );
        session.payment_id = Some(created.data.domestic_payment_id);
        Ok(status)
    }

    /// `POST /domestic-payments` with the user's token, sent once.
    async fn post_payment(
        &self,
        session: &PaymentSession,
        body: &[u8],
        idempotency_key: &str,
    ) -> Result<DomesticResponse, BankError> {
        let token = session
            .access_token
            .as_deref()
            .ok_or_else(|| BankError::protocol("the session has no access token"))?;
        let mut out = Outgoing::new(
            Method::POST,
            self.pisp(&["domestic-payments"])?,
            PAYMENTS_PATH,
            Retry::Never,
        );
        out.headers = pisp_post_headers(
            token,
            idempotency_key,
            &self.sign(body)?,
            &interaction_id(None),
        )?;
        out.body = Some(Body::Json(body.to_vec()));
        self.transport.send(out).await?.json("domestic payment")
    }

    /// The code was refused (`invalid_grant`): used already, most likely by an earlier
    /// attempt whose token the caller did not keep; or the user's token lapsed and could not
    /// be refreshed. If the consent is consumed, a payment was
    /// submitted under it and may be executing: that is said (`Consumed`, no ISO meaning), not
    /// an error the caller could take for a refusal. Otherwise the refusal stands.
    async fn after_a_spent_code(
        &self,
        session: &mut PaymentSession,
        err: BankError,
    ) -> Result<BankPaymentStatus, BankError> {
        match self.submission_status(session).await {
            Ok(status) if status.verbatim == "Consumed" => Ok(BankPaymentStatus {
                reason: Some(
                    "a payment was submitted under this consent; its id was not kept".to_owned(),
                ),
                ..status
            }),
            Ok(status) if status.verbatim == "Rejected" => Ok(status),
            _ => Err(err),
        }
    }

    /// The payment's status once submitted, else its consent's. Both are read with the hub's
    /// token (`TPPOAuth2Security` in the spec), so polling needs no user token.
    pub(super) async fn submission_status(
        &self,
        session: &mut PaymentSession,
    ) -> Result<BankPaymentStatus, BankError> {
        let interaction = interaction_id(None);
        if let Some(payment_id) = session.payment_id.clone() {
            let url = self.pisp(&["domestic-payments", &payment_id])?;
            let answer = self
                .with_client_token(PAYMENTS, |token| {
                    let mut out = Outgoing::get(url.clone(), PAYMENT);
                    out.headers = consent_headers(token, &interaction)?;
                    Ok(out)
                })
                .await?;
            let payment: DomesticResponse = answer.json("domestic payment")?;
            learn_payer(
                session,
                payment.data.refund.as_ref(),
                payment.data.debtor.as_ref(),
            );
            let status = payment_status(&payment.data.status);
            return Ok(self.with_rejection_reason(&payment_id, status).await);
        }
        let consent_id = session
            .consent_id
            .as_deref()
            .ok_or_else(|| BankError::protocol("the payment session has no consent id"))?;
        let url = self.pisp(&["domestic-payment-consents", consent_id])?;
        let answer = self
            .with_client_token(PAYMENTS, |token| {
                let mut out = Outgoing::get(url.clone(), CONSENT);
                out.headers = consent_headers(token, &interaction)?;
                Ok(out)
            })
            .await?;
        let consent: DomesticConsentResponse = answer.json("domestic payment consent")?;
        learn_payer(session, None, consent.data.debtor.as_ref());
        Ok(consent_status(&consent.data.status))
    }
}

/// Keeps the payer a bank answer names; an answer that names none leaves the one known.
fn learn_payer(
    session: &mut PaymentSession,
    refund: Option<&serde_json::Value>,
    debtor: Option<&serde_json::Value>,
) {
    if let Some(found) = payer(refund, debtor) {
        session.payer = Some(found);
    }
}

/// The headers of a PISP `POST`: the token, the key, and the body's detached signature.
fn pisp_post_headers(
    token: &str,
    idempotency_key: &str,
    signature: &str,
    interaction: &str,
) -> Result<HeaderMap, BankError> {
    let mut headers = consent_headers(token, interaction)?;
    put(&mut headers, "x-idempotency-key", idempotency_key)?;
    put(&mut headers, "x-jws-signature", signature)?;
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_keys_are_stable_distinct_and_fit() {
        let key = "7f1f6f4e-3d0b-4e5c-9a51-2b8f0c1d2e3f";
        let derived = consent_idempotency_key(key);
        assert_eq!(derived.len(), 40);
        assert_eq!(derived, consent_idempotency_key(key));
        assert_ne!(derived, key);
        assert_ne!(derived, consent_idempotency_key("other"));
        assert!(checks::idempotency_key(&derived).is_ok());
    }
}
