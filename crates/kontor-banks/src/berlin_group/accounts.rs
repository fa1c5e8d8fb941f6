//! Accounts and balances under a NextGenPSD2 consent, mapped to the hub's types.

use kontor_domain::account::{AccountKind, Balance, BalanceKind, BankAccount};
use kontor_domain::iban::Iban;

use super::BerlinGroup;
use super::wire::{self, AccountDetails, AccountList, Balances};
use crate::support::amount::{currency, signed};
use crate::support::dates::{date, timestamp};
use crate::support::text;
use crate::{BankError, ConsentSession, ReadContext};

impl BerlinGroup {
    pub(super) async fn read_accounts(
        &self,
        session: &ConsentSession,
        context: &ReadContext,
    ) -> Result<Vec<BankAccount>, BankError> {
        let out = self.read(
            self.url(&["v1", "accounts"])?,
            "/v1/accounts",
            session,
            context,
            context.request_id.as_deref(),
        )?;
        let list: AccountList = self.transport.send(out).await?.json("account list")?;
        let mut accounts = Vec::with_capacity(list.accounts.len());
        for details in list.accounts {
            // A multi-currency account has currency "XXX", which the hub's accounts cannot
            // hold yet: it is left out rather than failing the user's other accounts.
            if details.currency == "XXX" {
                tracing::warn!(
                    bank.id = %self.profile.id,
                    "skipping a multi-currency account the hub cannot represent"
                );
                continue;
            }
            accounts.push(account(&details)?);
        }
        Ok(accounts)
    }

    pub(super) async fn read_balances(
        &self,
        session: &ConsentSession,
        bank_account_id: &str,
        context: &ReadContext,
    ) -> Result<Vec<Balance>, BankError> {
        let out = self.read(
            self.url(&["v1", "accounts", bank_account_id, "balances"])?,
            "/v1/accounts/{account-id}/balances",
            session,
            context,
            context.request_id.as_deref(),
        )?;
        let answer: Balances = self.transport.send(out).await?.json("balances")?;
        answer.balances.iter().map(balance).collect()
    }
}

fn account(details: &AccountDetails) -> Result<BankAccount, BankError> {
    let bank_account_id = text(details.resource_id.as_deref())
        .ok_or_else(|| BankError::protocol("account without resourceId"))?;
    let iban = text(details.iban.as_deref())
        .map(|raw| Iban::parse(&raw))
        .transpose()
        .map_err(|_| BankError::protocol("account with an invalid IBAN"))?;
    let other_identification = if iban.is_none() {
        text(details.bban.as_deref()).or_else(|| text(details.msisdn.as_deref()))
    } else {
        None
    };
    Ok(BankAccount {
        bank_account_id,
        iban,
        other_identification,
        currency: currency(&details.currency, "account")?,
        // `displayName` is the user's own name for it; `name` the bank's, agreed with the user.
        name: text(details.display_name.as_deref()).or_else(|| text(details.name.as_deref())),
        product: text(details.product.as_deref()),
        owner_name: text(details.owner_name.as_deref()),
        kind: kind(details.cash_account_type.as_deref()),
    })
}

/// ISO 20022 `ExternalCashAccountType1Code`, plus `CARD`, which the ISO list lacks but banks
/// use for card accounts on `/v1/accounts`.
fn kind(cash_account_type: Option<&str>) -> AccountKind {
    match cash_account_type {
        Some("CACC" | "TRAN" | "SLRY") => AccountKind::Current,
        Some("SVGS" | "LLSV" | "ONDP" | "MOMA") => AccountKind::Savings,
        Some("CARD") => AccountKind::CreditCard,
        Some("LOAN" | "MGLD") => AccountKind::Loan,
        _ => AccountKind::Other,
    }
}

pub(super) fn balance(wire: &wire::Balance) -> Result<Balance, BankError> {
    let kind = match wire.balance_type.as_str() {
        "closingBooked" => BalanceKind::ClosingBooked,
        "expected" => BalanceKind::Expected,
        "openingBooked" => BalanceKind::OpeningBooked,
        "interimAvailable" => BalanceKind::InterimAvailable,
        "interimBooked" => BalanceKind::InterimBooked,
        "forwardAvailable" => BalanceKind::ForwardAvailable,
        "nonInvoiced" => BalanceKind::NonInvoiced,
        // Types added after 1.3.8 (e.g. `closingAvailable`) or by the bank.
        "closingAvailable" => BalanceKind::ClosingAvailable,
        _ => BalanceKind::Other,
    };
    Ok(Balance {
        kind,
        amount: signed(
            &wire.balance_amount.amount,
            &wire.balance_amount.currency,
            "balance",
        )?,
        credit_limit_included: wire.credit_limit_included,
        reference_date: wire
            .reference_date
            .as_deref()
            .map(|d| date(d, "balance referenceDate"))
            .transpose()?,
        last_change: wire
            .last_change_date_time
            .as_deref()
            .map(|t| timestamp(t, "balance lastChangeDateTime"))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn maps_an_account_from_the_spec_example() {
        let details: AccountDetails = parse(
            r#"{"resourceId":"3dc3d5b3","iban":"DE89370400440532013000","currency":"EUR",
                "product":"Girokonto","cashAccountType":"CACC","name":"Main Account",
                "ownerName":"Heike Mustermann"}"#,
        );
        let account = account(&details).unwrap();
        assert_eq!(account.bank_account_id, "3dc3d5b3");
        assert_eq!(account.iban.unwrap().as_str(), "DE89370400440532013000");
        assert_eq!(account.other_identification, None);
        assert_eq!(account.currency.code(), "EUR");
        assert_eq!(account.name.as_deref(), Some("Main Account"));
        assert_eq!(account.product.as_deref(), Some("Girokonto"));
        assert_eq!(account.owner_name.as_deref(), Some("Heike Mustermann"));
        assert_eq!(account.kind, AccountKind::Current);
    }

    #[test]
    fn accounts_without_iban_keep_their_bban_and_bad_ones_are_refused() {
        let bban: AccountDetails =
            parse(r#"{"resourceId":"r","bban":"370400440532013000","currency":"EUR"}"#);
        let mapped = account(&bban).unwrap();
        assert_eq!(
            mapped.other_identification.as_deref(),
            Some("370400440532013000")
        );
        assert_eq!(mapped.kind, AccountKind::Other);
        let no_id: AccountDetails = parse(r#"{"iban":"DE89370400440532013000","currency":"EUR"}"#);
        assert!(matches!(account(&no_id), Err(BankError::Protocol { .. })));
        let bad_iban: AccountDetails =
            parse(r#"{"resourceId":"r","iban":"DE88370400440532013000","currency":"EUR"}"#);
        assert!(matches!(
            account(&bad_iban),
            Err(BankError::Protocol { .. })
        ));
        let bad_currency: AccountDetails = parse(r#"{"resourceId":"r","currency":"EURO"}"#);
        assert!(matches!(
            account(&bad_currency),
            Err(BankError::Protocol { .. })
        ));
    }

    #[test]
    fn maps_balances() {
        let wire: wire::Balance = parse(
            r#"{"balanceAmount":{"currency":"EUR","amount":"-510.49"},"balanceType":"interimAvailable",
                "creditLimitIncluded":true,"lastChangeDateTime":"2026-03-02T09:00:00Z",
                "referenceDate":"2026-03-02"}"#,
        );
        let b = balance(&wire).unwrap();
        assert_eq!(b.kind, BalanceKind::InterimAvailable);
        assert_eq!(b.amount.minor_units(), -51_049);
        assert_eq!(b.credit_limit_included, Some(true));
        assert_eq!(b.reference_date.unwrap().to_string(), "2026-03-02");
        assert_eq!(b.last_change.unwrap().to_rfc3339(), "2026-03-02T09:00:00Z");
        let odd: wire::Balance = parse(
            r#"{"balanceAmount":{"currency":"EUR","amount":"1"},"balanceType":"somethingNew"}"#,
        );
        assert_eq!(balance(&odd).unwrap().kind, BalanceKind::Other);
        let bad: wire::Balance = parse(
            r#"{"balanceAmount":{"currency":"EUR","amount":"1,00"},"balanceType":"expected"}"#,
        );
        assert!(matches!(balance(&bad), Err(BankError::Protocol { .. })));
    }
}
