//! The bank's own view of accounts and booking entries, independent of either API standard.

use time::{Date, OffsetDateTime};

/// What kind of account an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Current,
    Savings,
    CreditCard,
}

/// One account of one customer at one bank.
#[derive(Debug, Clone)]
pub struct Account {
    /// Opaque id used as Berlin Group `resourceId` and UK `AccountId`.
    pub resource_id: String,
    pub owner: &'static str,
    pub owner_name: &'static str,
    pub kind: AccountKind,
    pub currency: String,
    pub iban: String,
    pub bban: String,
    pub sort_code: Option<String>,
    pub account_number: Option<String>,
    /// Masked card number, for card accounts and card payments.
    pub masked_pan: String,
    pub product: String,
    pub nickname: String,
    /// Balance before the first generated entry.
    pub opening_balance: i64,
    /// Overdraft (current accounts) or card limit, in minor units.
    pub credit_limit: i64,
    pub opened_on: Date,
}

/// What caused an entry; decides bank transaction codes and which fields are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Salary,
    IncomingTransfer,
    StandingOrder,
    TransferOut,
    TransferIn,
    DirectDebit,
    Card,
    CardRefund,
    CashWithdrawal,
    Interest,
    Fee,
    CardSettlementDebit,
    CardSettlementCredit,
    /// A payment initiated through the sandbox's own PIS API.
    InitiatedPayment,
    /// The credit side of an initiated payment to another account at the same bank.
    ReceivedPayment,
}

impl EntryKind {
    /// ISO 20022 bank transaction code (domain-family-subfamily), as Berlin Group carries it.
    pub fn iso_code(self) -> &'static str {
        match self {
            Self::Salary => "PMNT-RCDT-SALA",
            Self::IncomingTransfer | Self::TransferIn | Self::ReceivedPayment => "PMNT-RCDT-ESCT",
            Self::StandingOrder => "PMNT-ICDT-STDO",
            Self::TransferOut | Self::InitiatedPayment => "PMNT-ICDT-ESCT",
            Self::DirectDebit => "PMNT-RDDT-ESDD",
            Self::Card => "PMNT-CCRD-POSD",
            Self::CardRefund => "PMNT-CCRD-RIMB",
            Self::CashWithdrawal => "PMNT-CCRD-CWDL",
            Self::Interest => "ACMT-MDOP-INTR",
            Self::Fee => "ACMT-MDOP-FEES",
            Self::CardSettlementDebit => "PMNT-ICDT-BOOK",
            Self::CardSettlementCredit => "PMNT-RCDT-BOOK",
        }
    }

    /// The bank's own short code (UK banks still print these on statements).
    pub fn proprietary_code(self) -> &'static str {
        match self {
            Self::Salary | Self::IncomingTransfer => "BGC",
            Self::TransferIn | Self::ReceivedPayment => "FPI",
            Self::StandingOrder => "SO",
            Self::TransferOut | Self::InitiatedPayment => "FPO",
            Self::DirectDebit => "DD",
            Self::Card | Self::CardRefund => "DEB",
            Self::CashWithdrawal => "CPT",
            Self::Interest => "INT",
            Self::Fee => "CHG",
            Self::CardSettlementDebit | Self::CardSettlementCredit => "TFR",
        }
    }

    /// UK Open Banking `BankTransactionCode` (Code, SubCode).
    pub fn uk_code(self) -> (&'static str, &'static str) {
        match self {
            Self::Salary | Self::IncomingTransfer | Self::TransferIn | Self::ReceivedPayment => {
                ("ReceivedCreditTransfer", "DomesticCreditTransfer")
            }
            Self::StandingOrder => ("IssuedCreditTransfer", "StandingOrder"),
            Self::TransferOut | Self::InitiatedPayment => {
                ("IssuedCreditTransfer", "DomesticCreditTransfer")
            }
            Self::DirectDebit => ("ReceivedDirectDebit", "DomesticDirectDebit"),
            Self::Card => ("CustomerCardTransaction", "PointOfSalePayment"),
            Self::CardRefund => ("CustomerCardTransaction", "Reimbursement"),
            Self::CashWithdrawal => ("CustomerCardTransaction", "CashWithdrawal"),
            Self::Interest => ("AccountManagement", "Interest"),
            Self::Fee => ("AccountManagement", "Fees"),
            Self::CardSettlementDebit | Self::CardSettlementCredit => {
                ("AccountManagement", "InternalTransfer")
            }
        }
    }

    /// Card entries carry merchant and card details.
    pub fn is_card(self) -> bool {
        matches!(self, Self::Card | Self::CardRefund | Self::CashWithdrawal)
    }
}

/// The other party of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterparty {
    pub name: String,
    pub iban: Option<String>,
}

/// Where a card was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub name: String,
    pub city: String,
    pub category_code: String,
}

/// One booking entry. Its status is a function of the clock: invisible before `visible_at`,
/// pending until `booked_at`, then booked, with a different id (as real banks do).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index into the customer's accounts at this bank.
    pub account: usize,
    pub kind: EntryKind,
    pub visible_at: OffsetDateTime,
    /// `None` for entries that will never book (a rejected card authorisation).
    pub booked_at: Option<OffsetDateTime>,
    pub value_date: Date,
    /// Signed minor units while pending (card authorisations can differ from the booking).
    pub pending_amount: i64,
    /// Signed minor units once booked.
    pub amount: i64,
    pub pending_id: String,
    pub booked_id: String,
    pub pending_reference: String,
    pub booked_reference: String,
    pub counterparty: Option<Counterparty>,
    pub remittance: String,
    pub end_to_end_id: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    pub merchant: Option<Merchant>,
}

/// How an entry looks at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    Hidden,
    Pending,
    Booked,
}

impl Entry {
    pub fn status_at(&self, now: OffsetDateTime) -> EntryStatus {
        match self.booked_at {
            Some(booked) if booked <= now => EntryStatus::Booked,
            _ if self.visible_at <= now => EntryStatus::Pending,
            _ => EntryStatus::Hidden,
        }
    }
}
