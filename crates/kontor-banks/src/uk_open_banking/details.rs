//! Why a UK bank rejected a payment: its payment details (`GET …/domestic-payments/{id}/
//! payment-details`, `OBWritePaymentDetailsResponse1`), whose `StatusDetail` gives the reason
//! the payment's own status does not.

use kontor_domain::payment::Iso20022Status;

use super::consent::consent_headers;
use super::oauth::PAYMENTS;
use super::wire::PaymentDetailsResponse;
use super::{UkOpenBanking, interaction_id};
use crate::BankPaymentStatus;
use crate::http::Outgoing;

const PAYMENT_DETAILS: &str =
    "/open-banking/v3.1/pisp/domestic-payments/{DomesticPaymentId}/payment-details";

impl UkOpenBanking {
    /// A payment's status, with the bank's reason added when it is a rejection.
    pub(super) async fn with_rejection_reason(
        &self,
        payment_id: &str,
        mut status: BankPaymentStatus,
    ) -> BankPaymentStatus {
        if status.iso == Some(Iso20022Status::Rejected) && status.reason.is_none() {
            status.reason = self
                .rejection_reason(payment_id, &interaction_id(None))
                .await;
        }
        status
    }

    /// Why the bank rejected a payment, from its payment details (`StatusReasonDescription`,
    /// else the `StatusReason` code). Best effort: a bank that does not offer the details, or
    /// fails to answer, leaves the reason unknown.
    async fn rejection_reason(&self, payment_id: &str, interaction: &str) -> Option<String> {
        let url = self
            .pisp(&["domestic-payments", payment_id, "payment-details"])
            .ok()?;
        let answer = self
            .with_client_token(PAYMENTS, |token| {
                let mut out = Outgoing::get(url.clone(), PAYMENT_DETAILS);
                out.headers = consent_headers(token, interaction)?;
                Ok(out)
            })
            .await
            .ok()?;
        let details: PaymentDetailsResponse = answer.json("payment details").ok()?;
        details
            .data
            .payment_status
            .into_iter()
            .filter_map(|entry| entry.status_detail)
            .find_map(|detail| detail.status_reason_description.or(detail.status_reason))
            .map(|reason| {
                reason
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(256)
                    .collect::<String>()
            })
            .filter(|reason| !reason.trim().is_empty())
    }
}
