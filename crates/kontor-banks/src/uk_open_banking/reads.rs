//! Reading with the user's token: refreshing it when it expired, telling an expired consent
//! from a revoked one when the bank refuses, and the accounts and balances themselves.

use kontor_domain::account::{AccountKind, Balance, BalanceKind, BankAccount};
use kontor_domain::iban::Iban;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use url::Url;

use super::oauth::{bearer, needs_refresh};
use super::wire::{self, ReadAccount, ReadBalance};
use super::{UkOpenBanking, interaction_id};
use crate::http::{Incoming, Outgoing, put};
use crate::support::amount::{currency, with_indicator};
use crate::support::dates::timestamp;
use crate::support::text;
use crate::support::urls::resolve_link;
use crate::{BankError, ConsentSession, ReadContext};

/// A bank whose `Next` links never end would otherwise be followed forever.
pub(super) const MAX_PAGES: usize = 10_000;

impl UkOpenBanking {
    /// A GET with the user's access token, refreshed first when it has expired and once more
    /// when the bank refuses it (the bank's clock decides, not ours).
    pub(super) async fn psu_get(
        &self,
        session: &mut ConsentSession,
        url: &Url,
        template: &'static str,
        context: &ReadContext,
        interaction: &str,
    ) -> Result<Incoming, BankError> {
        if needs_refresh(session)
            && (session.refresh_token.is_some() || session.access_token.is_none())
            && let Err(err) = self.refresh(session).await
        {
            return Err(self.explain(session, err).await);
        }
        let result = match self
            .send_psu(session, url, template, context, interaction)
            .await
        {
            Err(BankError::Rejected { status: 401, .. }) if session.refresh_token.is_some() => {
                match self.refresh(session).await {
                    Ok(()) => {
                        self.send_psu(session, url, template, context, interaction)
                            .await
                    }
                    Err(err) => Err(err),
                }
            }
            other => other,
        };
        match result {
            Err(
                err @ (BankError::ConsentInvalid { .. } | BankError::Rejected { status: 401, .. }),
            ) => Err(self.explain(session, err).await),
            other => other,
        }
    }

    async fn send_psu(
        &self,
        session: &ConsentSession,
        url: &Url,
        template: &'static str,
        context: &ReadContext,
        interaction: &str,
    ) -> Result<Incoming, BankError> {
        let token = session
            .access_token
            .as_deref()
            .ok_or(BankError::ConsentInvalid {
                code: "no_access_token".to_owned(),
            })?;
        let mut out = Outgoing::get(url.clone(), template);
        out.headers.insert(AUTHORIZATION, bearer(token)?);
        out.headers
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        put(&mut out.headers, "x-fapi-interaction-id", interaction)?;
        if let Some(ip) = context.psu_ip {
            put(
                &mut out.headers,
                "x-fapi-customer-ip-address",
                &ip.to_string(),
            )?;
        }
        out.unattended = context.psu_ip.is_none();
        self.transport.send(out).await
    }

    /// Why the bank refused the user's token or consent. Read/Write 3.1.11 answers an expired
    /// consent as it answers a revoked one (`InvalidConsentStatus`, or `invalid_grant` on
    /// refresh), and has no `Expired` status: a consent still `Authorised` that the bank refuses
    /// has run past its `ExpirationDateTime`.
    async fn explain(&self, session: &ConsentSession, err: BankError) -> BankError {
        match self.fetch_consent(&session.consent_id).await {
            Ok(consent) => match consent.status.as_str() {
                "Authorised" if consent.expiration_date_time.is_some() => BankError::ConsentExpired,
                "Expired" => BankError::ConsentExpired,
                "Revoked" | "Rejected" | "AwaitingAuthorisation" => BankError::ConsentInvalid {
                    code: consent.status,
                },
                _ => err,
            },
            Err(_) => err,
        }
    }

    pub(super) async fn read_accounts(
        &self,
        session: &mut ConsentSession,
        context: &ReadContext,
    ) -> Result<Vec<BankAccount>, BankError> {
        let interaction = interaction_id(context.request_id.as_deref());
        let mut next = Some(self.aisp(&["accounts"])?);
        let mut accounts = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(BankError::protocol("the account pages do not end"));
            }
            let answer = self
                .psu_get(
                    session,
                    &url,
                    "/open-banking/v3.1/aisp/accounts",
                    context,
                    &interaction,
                )
                .await?;
            let page: ReadAccount = answer.json("accounts")?;
            for wire in page.data.account {
                accounts.push(account(wire)?);
            }
            next = page
                .links
                .next
                .map(|href| resolve_link(&self.profile.base_url, &href))
                .transpose()?;
        }
        Ok(accounts)
    }

    pub(super) async fn read_balances(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        context: &ReadContext,
    ) -> Result<Vec<Balance>, BankError> {
        let interaction = interaction_id(context.request_id.as_deref());
        let url = self.aisp(&["accounts", bank_account_id, "balances"])?;
        let answer = self
            .psu_get(
                session,
                &url,
                "/open-banking/v3.1/aisp/accounts/{AccountId}/balances",
                context,
                &interaction,
            )
            .await?;
        let read: ReadBalance = answer.json("balances")?;
        read.data.balance.iter().map(balance).collect()
    }
}

fn account(wire: wire::Account) -> Result<BankAccount, BankError> {
    let mut iban = None;
    let mut sort_code = None;
    let mut other = None;
    let mut owner_name = None;
    for id in &wire.account {
        let Some(identification) = text(id.identification.as_deref()) else {
            continue;
        };
        match id.scheme_name.as_deref() {
            Some("UK.OBIE.IBAN" | "IBAN") => {
                iban = Some(
                    Iban::parse(&identification)
                        .map_err(|_| BankError::protocol("account with an invalid IBAN"))?,
                );
            }
            Some("UK.OBIE.SortCodeAccountNumber" | "SortCodeAccountNumber") => {
                sort_code = Some(identification);
            }
            _ => other = other.or(Some(identification)),
        }
        // `Name` is the account holder's name as the bank shows it, not the product's.
        owner_name = owner_name.or_else(|| text(id.name.as_deref()));
    }
    let currency_code = wire
        .currency
        .as_deref()
        .ok_or_else(|| BankError::protocol("account without Currency"))?;
    Ok(BankAccount {
        bank_account_id: wire.account_id,
        iban,
        // A UK account is known by its sort code and number even when it has an IBAN.
        other_identification: sort_code.or(other),
        currency: currency(currency_code, "account")?,
        name: text(wire.nickname.as_deref()),
        product: text(wire.description.as_deref()),
        owner_name,
        kind: match wire.account_sub_type.as_deref() {
            Some("CurrentAccount") => AccountKind::Current,
            Some("Savings") => AccountKind::Savings,
            Some("CreditCard" | "ChargeCard") => AccountKind::CreditCard,
            Some("Loan" | "Mortgage") => AccountKind::Loan,
            _ => AccountKind::Other,
        },
    })
}

fn balance(wire: &wire::Balance) -> Result<Balance, BankError> {
    let kind = match wire.kind.as_str() {
        "ClosingAvailable" => BalanceKind::ClosingAvailable,
        "ClosingBooked" => BalanceKind::ClosingBooked,
        "Expected" => BalanceKind::Expected,
        "ForwardAvailable" => BalanceKind::ForwardAvailable,
        "Information" => BalanceKind::Information,
        "InterimAvailable" => BalanceKind::InterimAvailable,
        "InterimBooked" => BalanceKind::InterimBooked,
        "OpeningBooked" => BalanceKind::OpeningBooked,
        _ => BalanceKind::Other,
    };
    let at = timestamp(&wire.date_time, "balance DateTime")?;
    Ok(Balance {
        kind,
        amount: with_indicator(
            &wire.amount.amount,
            &wire.amount.currency,
            &wire.credit_debit_indicator,
            "balance",
        )?,
        credit_limit_included: (!wire.credit_line.is_empty())
            .then(|| wire.credit_line.iter().any(|line| line.included)),
        // `DateTime` is the instant the balance is for: its day, and the instant itself.
        reference_date: Some(at.to_datetime().date()),
        last_change: Some(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_an_account_with_sort_code_and_iban() {
        let wire: wire::Account = serde_json::from_str(
            r#"{"AccountId":"acc-1","Currency":"GBP","AccountType":"Personal",
                "AccountSubType":"CurrentAccount","Description":"Classic","Nickname":"Bills",
                "Account":[{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40099311463434",
                            "Name":"Bob Thompson"},
                           {"SchemeName":"UK.OBIE.IBAN","Identification":"GB29NWBK60161331926819"}]}"#,
        )
        .unwrap();
        let a = account(wire).unwrap();
        assert_eq!(a.bank_account_id, "acc-1");
        assert_eq!(a.iban.unwrap().as_str(), "GB29NWBK60161331926819");
        assert_eq!(a.other_identification.as_deref(), Some("40099311463434"));
        assert_eq!(a.owner_name.as_deref(), Some("Bob Thompson"));
        assert_eq!(a.name.as_deref(), Some("Bills"));
        assert_eq!(a.product.as_deref(), Some("Classic"));
        assert_eq!(a.kind, AccountKind::Current);
        assert_eq!(a.currency.code(), "GBP");
    }

    #[test]
    fn basic_accounts_without_identification_still_map() {
        let wire: wire::Account = serde_json::from_str(
            r#"{"AccountId":"acc-2","Currency":"GBP","AccountSubType":"ChargeCard"}"#,
        )
        .unwrap();
        let a = account(wire).unwrap();
        assert_eq!(a.iban, None);
        assert_eq!(a.kind, AccountKind::CreditCard);
        let no_currency: wire::Account = serde_json::from_str(r#"{"AccountId":"x"}"#).unwrap();
        assert!(matches!(
            account(no_currency),
            Err(BankError::Protocol { .. })
        ));
    }

    #[test]
    fn maps_a_debit_balance_with_a_credit_line() {
        let wire: wire::Balance = serde_json::from_str(
            r#"{"AccountId":"acc-1","CreditDebitIndicator":"Debit","Type":"InterimAvailable",
                "DateTime":"2026-03-02T09:00:00+00:00","Amount":{"Amount":"510.49","Currency":"GBP"},
                "CreditLine":[{"Included":false,"Type":"Pre-Agreed","Amount":{"Amount":"3000.00","Currency":"GBP"}},
                              {"Included":true}]}"#,
        )
        .unwrap();
        let b = balance(&wire).unwrap();
        assert_eq!(b.kind, BalanceKind::InterimAvailable);
        assert_eq!(b.amount.minor_units(), -51_049);
        assert_eq!(b.credit_limit_included, Some(true));
        assert_eq!(b.reference_date.unwrap().to_string(), "2026-03-02");
        let cleared: wire::Balance = serde_json::from_str(
            r#"{"CreditDebitIndicator":"Credit","Type":"ClosingCleared",
                "DateTime":"2026-03-02T09:00:00Z","Amount":{"Amount":"1.00000","Currency":"GBP"}}"#,
        )
        .unwrap();
        let b = balance(&cleared).unwrap();
        assert_eq!((b.kind, b.amount.minor_units()), (BalanceKind::Other, 100));
        assert_eq!(b.credit_limit_included, None);
    }
}
