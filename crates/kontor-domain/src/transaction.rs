//! Transactions as connectors report them, and the key that recognises the same transaction
//! across syncs: the bank's transaction id, else its entry reference, else a fingerprint of the
//! transaction's content.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Date;

use crate::money::Money;

crate::words!(
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum TransactionStatus as "transaction status" {
        Booked => "booked",
        Pending => "pending",
    }
);

/// A transaction as read from the bank. Personal data: `Debug` shows only ids, status, dates
/// and the amount.
#[derive(Clone, PartialEq, Eq)]
pub struct BankTransaction {
    /// Berlin Group `transactionId`, UK `TransactionId`.
    pub transaction_id: Option<String>,
    /// Berlin Group `entryReference`, UK `TransactionReference`.
    pub entry_reference: Option<String>,
    pub status: TransactionStatus,
    pub booking_date: Option<Date>,
    pub value_date: Option<Date>,
    /// Signed from the account holder's view: money out is negative.
    pub amount: Money,
    pub counterparty_name: Option<String>,
    /// IBAN or other account identification of the other party.
    pub counterparty_account: Option<String>,
    pub remittance: Option<String>,
    pub end_to_end_id: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    /// Bank transaction code (ISO 20022 domain/family/sub-family, or the bank's own).
    pub bank_transaction_code: Option<String>,
    pub merchant_category_code: Option<String>,
}

impl fmt::Debug for BankTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankTransaction")
            .field("transaction_id", &self.transaction_id)
            .field("entry_reference", &self.entry_reference)
            .field("status", &self.status)
            .field("booking_date", &self.booking_date)
            .field("value_date", &self.value_date)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// How a transaction is recognised again in a later sync.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey(String);

impl DedupKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a key read back from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl BankTransaction {
    /// The date a person would put on it: booking date, else value date.
    pub fn date(&self) -> Option<Date> {
        self.booking_date.or(self.value_date)
    }

    /// A digest of what the transaction *is*, leaving out what changes when it books (status,
    /// ids). Two identical purchases on one day have the same fingerprint; [`dedup_keys`]
    /// tells them apart by order.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        let mut field = |value: &str| {
            hasher.update(value.as_bytes());
            hasher.update([0x1f]);
        };
        field(&self.amount.minor_units().to_string());
        field(self.amount.currency().code());
        field(&self.date().map(|d| d.to_string()).unwrap_or_default());
        field(non_empty(self.counterparty_name.as_ref()).unwrap_or_default());
        field(non_empty(self.counterparty_account.as_ref()).unwrap_or_default());
        field(non_empty(self.remittance.as_ref()).unwrap_or_default());
        field(non_empty(self.end_to_end_id.as_ref()).unwrap_or_default());
        let digest = hasher.finalize();
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// The dedup key of each transaction of one fetch, in order. Transactions without any bank id
/// fall back to their fingerprint plus how many identical ones came before them in the fetch,
/// so that two equal coffees on one day stay two transactions.
pub fn dedup_keys(fetched: &[BankTransaction]) -> Vec<DedupKey> {
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    fetched
        .iter()
        .map(|tx| {
            if let Some(id) = non_empty(tx.transaction_id.as_ref()) {
                DedupKey(format!("id:{id}"))
            } else if let Some(reference) = non_empty(tx.entry_reference.as_ref()) {
                DedupKey(format!("ref:{reference}"))
            } else {
                let fingerprint = tx.fingerprint();
                let count = seen.entry(fingerprint.clone()).or_insert(0);
                let key = DedupKey(format!("fp:{fingerprint}:{count}"));
                *count += 1;
                key
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::currency::Currency;

    pub(crate) fn tx(
        amount: &str,
        date: (i32, u8, u8),
        status: TransactionStatus,
    ) -> BankTransaction {
        let month = time::Month::try_from(date.1).unwrap();
        BankTransaction {
            transaction_id: None,
            entry_reference: None,
            status,
            booking_date: Some(Date::from_calendar_date(date.0, month, date.2).unwrap()),
            value_date: None,
            amount: Money::parse(amount, Currency::parse("EUR").unwrap()).unwrap(),
            counterparty_name: Some("Coffee Corner".into()),
            counterparty_account: None,
            remittance: Some("card payment".into()),
            end_to_end_id: None,
            mandate_id: None,
            creditor_id: None,
            bank_transaction_code: None,
            merchant_category_code: None,
        }
    }

    #[test]
    fn keys_prefer_bank_ids() {
        let mut with_id = tx("-3.50", (2026, 11, 2), TransactionStatus::Booked);
        with_id.transaction_id = Some("T-1".into());
        with_id.entry_reference = Some("R-1".into());
        let mut with_ref = with_id.clone();
        with_ref.transaction_id = Some("  ".into());
        let plain = tx("-3.50", (2026, 11, 2), TransactionStatus::Booked);
        let keys = dedup_keys(&[with_id, with_ref, plain]);
        assert_eq!(keys[0].as_str(), "id:T-1");
        assert_eq!(keys[1].as_str(), "ref:R-1");
        assert!(keys[2].as_str().starts_with("fp:"));
    }

    #[test]
    fn identical_transactions_keep_distinct_keys() {
        let coffee = tx("-3.50", (2026, 11, 2), TransactionStatus::Booked);
        let keys = dedup_keys(&[coffee.clone(), coffee.clone(), coffee]);
        assert_eq!(
            keys.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
        assert!(keys[0].as_str().ends_with(":0") && keys[2].as_str().ends_with(":2"));
    }

    #[test]
    fn fingerprint_ignores_status_but_not_content() {
        let pending = tx("-3.50", (2026, 11, 2), TransactionStatus::Pending);
        let booked = tx("-3.50", (2026, 11, 2), TransactionStatus::Booked);
        assert_eq!(pending.fingerprint(), booked.fingerprint());
        let dearer = tx("-3.60", (2026, 11, 2), TransactionStatus::Booked);
        assert_ne!(booked.fingerprint(), dearer.fingerprint());
        let later = tx("-3.50", (2026, 11, 3), TransactionStatus::Booked);
        assert_ne!(booked.fingerprint(), later.fingerprint());
    }

    #[test]
    fn debug_hides_counterparty_and_remittance() {
        let shown = format!(
            "{:?}",
            tx("-3.50", (2026, 11, 2), TransactionStatus::Booked)
        );
        assert!(
            !shown.contains("Coffee") && !shown.contains("card payment"),
            "{shown}"
        );
    }
}
