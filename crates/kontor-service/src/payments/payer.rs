//! Who pays: the account a payment is made from, as the bank reported it (UK banks do when the
//! consent asks, which the connector does). The hub keeps it in the payment's sealed details,
//! beside the creditor, so that the tenant sees the account its user chose at the bank; the
//! connector's session does not keep a second copy.

use kontor_banks::{PayerAccount, PaymentSession};
use kontor_domain::payment::Payment;

use super::{PaymentDetails, StoredAccount};
use crate::error::ServiceResult;
use crate::hub::Hub;
use crate::vault::{context, open_json, seal_json};

/// The details with what `payer` adds to them, or `None` when it adds nothing: the account when
/// the request named none; the account's name when the account is the one named. A bank that
/// reports another account than the request named is not believed over the request (the
/// payment was authorised from the account named); that is logged by the caller.
fn with_payer(details: &PaymentDetails, payer: &PayerAccount) -> Option<PaymentDetails> {
    let reported = StoredAccount::from_reference(&payer.account);
    let mut next = details.clone();
    match &details.debtor {
        None => next.debtor = Some(reported),
        Some(named) if *named == reported => {}
        Some(_) => return None,
    }
    if payer.name.is_some() {
        next.debtor_name.clone_from(&payer.name);
    }
    (next != *details).then_some(next)
}

impl Hub {
    /// Takes the payer out of `session` (the session is saved without it) and, when it adds to
    /// the payment's details, returns them sealed for the same step. Reading the details is
    /// best effort: the status the step records matters more, and the bank tells the payer
    /// again on the next read.
    pub(crate) async fn take_payer(
        &self,
        payment: &Payment,
        session: &PaymentSession,
    ) -> ServiceResult<(PaymentSession, Option<String>)> {
        let mut kept = session.clone();
        let Some(payer) = kept.payer.take() else {
            return Ok((kept, None));
        };
        match self.details_with_payer(payment, &payer).await {
            Ok(details) => Ok((kept, details)),
            Err(err) => {
                tracing::warn!(payment.id = %payment.id, error = %err, "could not add the payer to the payment's details; the next read of the bank tries again");
                Ok((session.clone(), None))
            }
        }
    }

    /// The payment's details with `payer`, sealed, when it adds to them.
    async fn details_with_payer(
        &self,
        payment: &Payment,
        payer: &PayerAccount,
    ) -> ServiceResult<Option<String>> {
        let cell = self.payment_cell(&payment.id).await?;
        let sealed = cell.payment_secrets(&payment.id).await?.details;
        let key = self.vault().user_key(cell, &payment.user_id).await?;
        let details: PaymentDetails = open_json(&key, &sealed, &context::payment(&payment.id))?;
        let Some(next) = with_payer(&details, payer) else {
            if details
                .debtor
                .as_ref()
                .is_some_and(|named| *named != StoredAccount::from_reference(&payer.account))
            {
                tracing::warn!(payment.id = %payment.id, "the bank reported another debtor account than the request named; the request's is kept");
            }
            return Ok(None);
        };
        tracing::info!(payment.id = %payment.id, "the bank named the account paid from");
        seal_json(&key, &next, &context::payment(&payment.id)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use kontor_banks::AccountReference;
    use kontor_domain::{SortCode, UkAccountNumber};

    use super::*;

    fn details(debtor: Option<StoredAccount>) -> PaymentDetails {
        PaymentDetails {
            creditor_name: "Landlord Ltd".into(),
            creditor: StoredAccount::SortCode {
                sort_code: "400993".into(),
                account_number: "30971327".into(),
            },
            debtor,
            debtor_name: None,
            remittance: None,
            authorize_token: "token".into(),
        }
    }

    fn payer(sort_code: &str, name: Option<&str>) -> PayerAccount {
        PayerAccount {
            account: AccountReference::SortCode {
                sort_code: SortCode::parse(sort_code).unwrap(),
                account_number: UkAccountNumber::parse("11223344").unwrap(),
            },
            name: name.map(str::to_owned),
        }
    }

    fn stored(sort_code: &str) -> StoredAccount {
        StoredAccount::SortCode {
            sort_code: sort_code.into(),
            account_number: "11223344".into(),
        }
    }

    #[test]
    fn the_bank_fills_in_an_account_the_request_left_open() {
        let filled = with_payer(&details(None), &payer("200000", Some("Bob Smith"))).unwrap();
        assert_eq!(filled.debtor, Some(stored("200000")));
        assert_eq!(filled.debtor_name.as_deref(), Some("Bob Smith"));
        // Told again: nothing new.
        assert_eq!(
            with_payer(&filled, &payer("200000", Some("Bob Smith"))),
            None
        );
        // Told without the name: the name stays.
        assert_eq!(with_payer(&filled, &payer("200000", None)), None);
    }

    #[test]
    fn a_named_account_gets_its_name_and_is_never_replaced() {
        let named = details(Some(stored("200000")));
        let same = with_payer(&named, &payer("200000", Some("Bob Smith"))).unwrap();
        assert_eq!(same.debtor, Some(stored("200000")));
        assert_eq!(same.debtor_name.as_deref(), Some("Bob Smith"));
        assert_eq!(with_payer(&named, &payer("309999", Some("Mallory"))), None);
    }
}
