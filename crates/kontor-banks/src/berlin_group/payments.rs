//! Payment initiation at a NextGenPSD2 bank: a single SEPA credit transfer (plain or instant)
//! created with `POST /v1/payments/{payment-product}`, authorised by the user through the
//! bank's redirect, and followed through `GET …/{paymentId}/status`.
//!
//! Exactly once. The initiation is sent once (never retried by the HTTP layer). When its answer
//! is lost, the caller calls [`crate::BankConnector::initiate_payment`] again with the same
//! idempotency key; the connector sends the same `X-Request-ID` ([`payment_request_id`]) and
//! the same body. NextGenPSD2 has no idempotency header: this relies on the bank treating a
//! repeated `X-Request-ID` as the same request and answering with the payment it created
//! (the sandbox does, for 24 hours), redirect headers and all: the user comes back with the
//! first request's state. A bank that does not creates a second payment resource.
//! That one cannot move money by itself: a NextGenPSD2 payment executes only once the user
//! authorises it, through the SCA of that very `paymentId`, and the user is sent to the
//! authorisation of the one answer the hub received. The other stays `RCVD` until the bank
//! drops it. The connector cannot find or cancel it (its id is in the answer that was lost).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use kontor_domain::payment::{Iso20022Status, PaymentScheme};
use reqwest::Method;
use tokio::net::{UdpSocket, lookup_host};
use url::Host;

use super::consent::{authorisation_id, sca_step};
use super::wire::{
    AccountReference, Amount, AuthorisationStarted, PaymentCancelled, PaymentInitiated,
    PaymentInitiation, PaymentStatus,
};
use super::{BerlinGroup, NOK_PARAM};
use crate::http::{Body, Outgoing, Retry};
use crate::support::checks;
use crate::support::ids::{is_uuid, uuid_from_name};
use crate::support::urls::resolve_link;
use crate::{
    BankError, BankPaymentStatus, Callback, PaymentCancellation, PaymentProduct, PaymentRequest,
    PaymentSession, PaymentStarted, ScaStep,
};

/// Where the session keeps the `state` the payment was started with, and its product.
const STATE_KEY: &str = "state";
const PRODUCT_KEY: &str = "product";

const SCT: &str = "sepa-credit-transfers";
const SCT_INST: &str = "instant-sepa-credit-transfers";

/// The `X-Request-ID` of a payment's initiation: the hub's idempotency key itself when it is a
/// UUID (as the header's `format: uuid` asks), else a UUID derived from it (version 8, the first
/// 16 bytes of the key's SHA-256), so that every attempt for the same key sends the same id.
pub fn payment_request_id(idempotency_key: &str) -> String {
    if is_uuid(idempotency_key) {
        idempotency_key.to_owned()
    } else {
        uuid_from_name(idempotency_key)
    }
}

impl BerlinGroup {
    pub(super) async fn initiate(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, BankError> {
        let (product, template) = product(request.product)?;
        let body = initiation(request)?;
        // `PSU-IP-Address_mandatory`: "If not available, the TPP shall use the IP Address used
        // by the TPP when submitting this request" (a resumed initiation has no user present).
        let psu_ip = match request.psu_ip {
            Some(ip) => ip,
            None => self.own_address().await?,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|_| BankError::protocol("cannot encode the payment initiation"))?;
        let request_id = payment_request_id(request.idempotency_key.as_str());

        let mut out = Outgoing::new(
            Method::POST,
            self.url(&["v1", "payments", product])?,
            template,
            Retry::Never,
        );
        out.headers = self.sca_headers(
            &request.redirect_uri,
            &request.state,
            Some(psu_ip),
            Some(&request_id),
            None,
        )?;
        out.body = Some(Body::Json(body));
        let created: PaymentInitiated =
            self.transport.send(out).await?.json("payment initiation")?;

        let mut session = PaymentSession {
            payment_id: Some(created.payment_id),
            redirect_uri: Some(request.redirect_uri.to_string()),
            extra: BTreeMap::from([
                (STATE_KEY.to_owned(), request.state.clone()),
                (PRODUCT_KEY.to_owned(), product.to_owned()),
            ]),
            ..PaymentSession::default()
        };
        session.authorisation_id = authorisation_id(&created.links);
        let status = status(&created.transaction_status, None);

        if let Some(sca) = sca_step(&created.links, false, created.psu_message.as_ref())? {
            return Ok(PaymentStarted {
                session,
                sca,
                status,
            });
        }
        // The bank wants the authorisation started explicitly (the spec requires that when
        // several users must authorise).
        let Some(start) = created.links.get("startAuthorisation") else {
            return Err(BankError::protocol(
                "the bank offers only SCA approaches the hub does not support (embedded, OAuth2)",
            ));
        };
        let mut out = Outgoing::new(
            Method::POST,
            resolve_link(&self.profile.base_url, &start.href)?,
            "/v1/payments/{payment-product}/{paymentId}/authorisations",
            Retry::Never,
        );
        // A new X-Request-ID: this is another request. Repeated after a lost answer, it makes
        // another authorisation of the same payment, which costs nothing.
        out.headers = self.sca_headers(
            &request.redirect_uri,
            &request.state,
            Some(psu_ip),
            None,
            None,
        )?;
        let started: AuthorisationStarted = self
            .transport
            .send(out)
            .await?
            .json("authorisation start")?;
        session.authorisation_id = Some(started.authorisation_id);
        match sca_step(&started.links, false, started.psu_message.as_ref())? {
            Some(sca @ ScaStep::Redirect { .. }) => Ok(PaymentStarted {
                session,
                sca,
                status,
            }),
            _ => Err(BankError::protocol(
                "the bank's payment authorisation offers no redirect",
            )),
        }
    }

    pub(super) async fn complete_initiation(
        &self,
        session: &PaymentSession,
        callback: &Callback,
    ) -> Result<BankPaymentStatus, BankError> {
        // The callback only adds the failure marker: the status is the bank's. A callback
        // whose state is not the session's (a replayed initiation carries the first request's
        // redirect, and with it the first state) is not trusted with that, but does not stop
        // the hub from learning what the bank did.
        let trusted = match (session.extra.get(STATE_KEY), callback.get("state")) {
            (Some(expected), Some(got)) if expected != got => {
                tracing::warn!(
                    bank.id = %self.profile.id,
                    "payment callback with another state; reading the status only"
                );
                false
            }
            _ => true,
        };
        let failed =
            trusted && (callback.get(NOK_PARAM) == Some("nok") || callback.get("error").is_some());
        let mut status = self.initiation_status(session).await?;
        // The bank may not have settled the payment's status yet when it sends the user back
        // (still RCVD): its word stays what it is, with the reason beside it.
        if failed && status.reason.is_none() && !authorised(&status) {
            status.reason =
                Some("the user cancelled or failed authentication at the bank".to_owned());
        }
        Ok(status)
    }

    /// The hub's own address on the way to the bank: the local address of a UDP socket
    /// connected to it (connecting a UDP socket sends nothing; it only picks the route).
    async fn own_address(&self) -> Result<IpAddr, BankError> {
        let unavailable = |detail: &str| BankError::Unavailable {
            status: None,
            detail: format!("cannot find the hub's own address towards the bank: {detail}"),
        };
        let url = &self.profile.base_url;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| unavailable("no port"))?;
        let target: SocketAddr = match url.host() {
            Some(Host::Ipv4(ip)) => (ip, port).into(),
            Some(Host::Ipv6(ip)) => (ip, port).into(),
            Some(Host::Domain(domain)) => lookup_host((domain, port))
                .await
                .map_err(|_| unavailable("name resolution failed"))?
                .next()
                .ok_or_else(|| unavailable("the name has no address"))?,
            None => return Err(unavailable("no host")),
        };
        let any: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any)
            .await
            .map_err(|_| unavailable("no local socket"))?;
        socket
            .connect(target)
            .await
            .map_err(|_| unavailable("no route"))?;
        socket
            .local_addr()
            .map(|local| local.ip())
            .map_err(|_| unavailable("no local address"))
    }

    /// `DELETE /v1/payments/{payment-product}/{paymentId}`: `204` cancelled; `202` with the
    /// status, and a `startAuthorisation*` link when the user must authorise the cancellation;
    /// `405 CANCELLATION_INVALID` when the bank will not (settled, past its cut-off). DELETE is
    /// idempotent, so it is retried like a read.
    pub(super) async fn cancel(
        &self,
        session: &PaymentSession,
    ) -> Result<PaymentCancellation, BankError> {
        let (product, payment_id) = session_payment(session)?;
        let mut out = Outgoing::new(
            Method::DELETE,
            self.url(&["v1", "payments", product, payment_id])?,
            "/v1/payments/{payment-product}/{paymentId}",
            Retry::Safe,
        );
        out.headers = self.headers(None, None)?;
        let answer = match self.transport.send(out).await {
            Ok(answer) => answer,
            Err(BankError::Rejected { status, code, .. }) if status == 405 || status == 400 => {
                return Ok(PaymentCancellation::Refused { reason: code });
            }
            Err(err) => return Err(err),
        };
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(PaymentCancellation::Cancelled(status("CANC", None)));
        }
        let received: PaymentCancelled = answer.json("payment cancellation")?;
        let now = status(&received.transaction_status, None);
        let cancelled = now
            .iso
            .is_some_and(|iso| iso.kontor_status() == kontor_domain::PaymentStatus::Cancelled);
        if cancelled {
            Ok(PaymentCancellation::Cancelled(now))
        } else if received
            .links
            .keys()
            .any(|name| name.starts_with("startAuthorisation"))
        {
            Ok(PaymentCancellation::NeedsAuthorisation)
        } else {
            Ok(PaymentCancellation::Refused {
                reason: format!(
                    "the bank received the cancellation but the payment stays {}",
                    now.verbatim
                ),
            })
        }
    }

    pub(super) async fn initiation_status(
        &self,
        session: &PaymentSession,
    ) -> Result<BankPaymentStatus, BankError> {
        let (product, payment_id) = session_payment(session)?;
        let mut out = Outgoing::get(
            self.url(&["v1", "payments", product, payment_id, "status"])?,
            "/v1/payments/{payment-product}/{paymentId}/status",
        );
        out.headers = self.headers(None, None)?;
        let answer: PaymentStatus = self.transport.send(out).await?.json("payment status")?;
        Ok(status(&answer.transaction_status, answer.funds_available))
    }
}

/// The product's path segment and the bank's payment id, from the session.
fn session_payment(session: &PaymentSession) -> Result<(&'static str, &str), BankError> {
    let payment_id = session
        .payment_id
        .as_deref()
        .ok_or_else(|| BankError::protocol("the payment session has no payment id"))?;
    let product = match session.extra.get(PRODUCT_KEY).map(String::as_str) {
        Some(SCT) => SCT,
        Some(SCT_INST) => SCT_INST,
        _ => {
            return Err(BankError::protocol(
                "the payment session has no known payment product",
            ));
        }
    };
    Ok((product, payment_id))
}

/// The path segment of the product, and the path template for logs.
fn product(product: PaymentProduct) -> Result<(&'static str, &'static str), BankError> {
    match product {
        PaymentProduct::SepaCreditTransfer => Ok((SCT, "/v1/payments/sepa-credit-transfers")),
        PaymentProduct::InstantSepaCreditTransfer => {
            Ok((SCT_INST, "/v1/payments/instant-sepa-credit-transfers"))
        }
        PaymentProduct::UkDomestic => Err(BankError::invalid_request(
            "product",
            "a Berlin Group bank initiates SEPA credit transfers, not UK domestic payments",
        )),
    }
}

/// The initiation's body, after the checks `paymentInitiation_json` implies: debtor and
/// creditor by IBAN, euro, `creditorName` at most 70 characters,
/// `remittanceInformationUnstructured` at most 140, `endToEndIdentification` at most 35.
fn initiation(request: &PaymentRequest) -> Result<PaymentInitiation, BankError> {
    checks::common(request)?;
    if request.amount.currency() != PaymentScheme::Sepa.currency() {
        return Err(BankError::invalid_request(
            "amount",
            "SEPA credit transfers are in EUR",
        ));
    }
    let debtor = match &request.debtor {
        Some(debtor) => iban(debtor, "debtor")?,
        None => {
            return Err(BankError::invalid_request(
                "debtor",
                "NextGenPSD2 1.3.8 requires the debtor account (debtorAccount is mandatory)",
            ));
        }
    };
    Ok(PaymentInitiation {
        end_to_end_identification: request.end_to_end_id.to_string(),
        debtor_account: debtor,
        instructed_amount: Amount {
            currency: request.amount.currency().code().to_owned(),
            amount: request.amount.to_decimal_string(),
        },
        creditor_account: iban(&request.creditor, "creditor")?,
        creditor_name: request.creditor_name.to_string(),
        remittance_information_unstructured: request.remittance.as_ref().map(ToString::to_string),
    })
}

fn iban(reference: &crate::AccountReference, field: &str) -> Result<AccountReference, BankError> {
    match reference {
        crate::AccountReference::Iban(iban) => Ok(AccountReference {
            iban: Some(iban.as_str().to_owned()),
            ..AccountReference::default()
        }),
        crate::AccountReference::SortCode { .. } => Err(BankError::invalid_request(
            field,
            "a SEPA credit transfer addresses accounts by IBAN",
        )),
    }
}

/// `transactionStatus` as the hub keeps it. A code outside the ISO list is kept verbatim
/// without a meaning rather than refused: the next poll may bring one the hub knows.
fn status(code: &str, funds_available: Option<bool>) -> BankPaymentStatus {
    let iso = Iso20022Status::parse(code).ok();
    let reason = (iso == Some(Iso20022Status::Rejected) && funds_available == Some(false))
        .then(|| "insufficient funds (fundsAvailable: false)".to_owned());
    BankPaymentStatus {
        verbatim: code.to_owned(),
        iso,
        reason,
    }
}

/// Whether the user authorised the payment: accepted at some stage, not waiting (RCVD, PDNG,
/// PATC), refused (RJCT, CANC) or unknown.
fn authorised(status: &BankPaymentStatus) -> bool {
    use kontor_domain::payment::PaymentStatus as S;
    status
        .iso
        .is_some_and(|iso| matches!(iso.kontor_status(), S::Authorised | S::Completed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_key_or_derived_from_it() {
        let uuid = "99391c7e-ad88-49ec-a2ad-99ddcb1f7721";
        assert_eq!(payment_request_id(uuid), uuid);
        let derived = payment_request_id("pay-42");
        assert!(is_uuid(&derived));
        assert_eq!(derived, payment_request_id("pay-42"));
        assert_ne!(derived, payment_request_id("pay-43"));
    }

    #[test]
    fn statuses_keep_the_code_and_say_why_when_funds_lacked() {
        let accepted = status("ACSC", None);
        assert_eq!(accepted.verbatim, "ACSC");
        assert_eq!(
            accepted.iso,
            Some(Iso20022Status::AcceptedSettlementCompleted)
        );
        assert_eq!(accepted.reason, None);
        let rejected = status("RJCT", Some(false));
        assert_eq!(rejected.iso, Some(Iso20022Status::Rejected));
        assert!(rejected.reason.unwrap().contains("funds"));
        let odd = status("XYZW", None);
        assert_eq!((odd.verbatim.as_str(), odd.iso), ("XYZW", None));
        assert!(!authorised(&odd));
        assert!(!authorised(&status("RCVD", None)));
        assert!(!authorised(&status("RJCT", None)));
        assert!(authorised(&status("ACTC", None)));
        assert!(authorised(&status("ACSC", None)));
    }
}
