//! The user's side of a payment, on the hub's page: who is paid how much, from which bank, and
//! the user's cancel there. Going on to the bank is in `initiate.rs`; the way back through the
//! callback in `callback.rs`.

use kontor_banks::{BankPaymentStatus, PaymentProduct};
use kontor_domain::PaymentId;
use kontor_domain::payment::{Payment, PaymentPhase, PaymentScheme, PaymentStatus};
use kontor_store::PaymentSecrets;
use url::Url;

use super::PaymentDetails;
use crate::directory::BankEntry;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::link::NextStep;
use crate::tokens::token_matches;
use crate::vault::{context, open_json};

/// What the payment page shows.
#[derive(Debug, Clone)]
pub struct PaymentPage {
    pub payment: Payment,
    pub details: PaymentDetails,
    /// The tenant's display name if it set one, else its name.
    pub tenant_name: String,
    /// The tenant's logo and accent colour for the page.
    pub branding: kontor_domain::branding::Branding,
    pub bank: Option<BankEntry>,
}

/// The tenant's redirect URI with the payment's id and status.
pub fn payment_redirect(payment: &Payment) -> ServiceResult<Url> {
    let mut url = Url::parse(&payment.redirect_uri)
        .map_err(|e| ServiceError::Internal(format!("stored redirect_uri: {e}")))?;
    url.query_pairs_mut()
        .append_pair("payment_id", payment.id.as_str())
        .append_pair("status", payment.status.as_str());
    Ok(url)
}

pub(crate) fn product(scheme: PaymentScheme) -> PaymentProduct {
    match scheme {
        PaymentScheme::Sepa => PaymentProduct::SepaCreditTransfer,
        PaymentScheme::SepaInstant => PaymentProduct::InstantSepaCreditTransfer,
        PaymentScheme::UkDomestic => PaymentProduct::UkDomestic,
    }
}

impl Hub {
    pub(super) async fn checked_payment(
        &self,
        id: &PaymentId,
        token: &str,
    ) -> ServiceResult<PaymentSecrets> {
        let cell = self.payment_cell(id).await?;
        let secrets = cell.payment_secrets(id).await?;
        if !token_matches(token, &secrets.authorize_token_hash) {
            return Err(ServiceError::NotFound);
        }
        Ok(secrets)
    }

    pub(crate) async fn payment_details(
        &self,
        secrets: &PaymentSecrets,
    ) -> ServiceResult<PaymentDetails> {
        let cell = self.payment_cell(&secrets.payment.id).await?;
        let key = self
            .vault()
            .user_key(cell, &secrets.payment.user_id)
            .await?;
        open_json(
            &key,
            &secrets.details,
            &context::payment(&secrets.payment.id),
        )
    }

    pub async fn payment_page(&self, id: &PaymentId, token: &str) -> ServiceResult<PaymentPage> {
        let secrets = self.checked_payment(id, token).await?;
        let details = self.payment_details(&secrets).await?;
        let (tenant_name, branding) = self.tenant_face(&secrets.payment.tenant_id).await?;
        let bank = self.directory().get(&secrets.payment.bank_id).cloned();
        Ok(PaymentPage {
            payment: secrets.payment,
            details,
            tenant_name,
            branding,
            bank,
        })
    }

    /// The user cancelled on the hub's page, before going to the bank.
    pub async fn cancel_payment(&self, id: &PaymentId, token: &str) -> ServiceResult<NextStep> {
        let secrets = self.checked_payment(id, token).await?;
        let payment = secrets.payment;
        if payment.phase != PaymentPhase::Accepted {
            return Ok(NextStep::Tenant {
                url: payment_redirect(&payment)?,
                activated: None,
            });
        }
        let cancelled = BankPaymentStatus {
            verbatim: "CANC".into(),
            iso: None,
            reason: Some("user_cancelled".into()),
        };
        let done = self
            .finish(
                &payment,
                PaymentStatus::Cancelled,
                &cancelled,
                &[PaymentPhase::Accepted],
            )
            .await?;
        Ok(NextStep::Tenant {
            url: payment_redirect(&done)?,
            activated: None,
        })
    }
}
