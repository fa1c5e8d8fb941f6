//! Templates for a customer's financial life at one bank: accounts, recurring bookings and
//! card spending. The generator turns a template plus a seed into 24 months of entries.

mod de;
mod fr;
mod side;
mod uk;

use crate::config::BankConfig;
use crate::data::model::AccountKind;
use crate::data::users::{Home, SandboxUser};

/// Every month, as a bit mask (bit 0 = January).
pub const ALL_MONTHS: u16 = 0x0FFF;

/// A month mask from month numbers (1 = January).
pub const fn months(list: &[u8]) -> u16 {
    let mut mask = 0u16;
    let mut i = 0;
    while i < list.len() {
        mask |= 1 << (list[i] - 1);
        i += 1;
    }
    mask
}

/// Which way a due date on a weekend moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjust {
    Forward,
    Backward,
}

/// When a recurring booking falls due.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// This day of the month (capped at the month's length), moved off weekends.
    Monthly { day: u8, adjust: Adjust },
    /// The last business day of the month.
    LastBusinessDay,
}

/// What a recurring booking is.
#[derive(Debug, Clone, Copy)]
pub enum Flow {
    Salary,
    IncomingTransfer,
    StandingOrder,
    /// A SEPA direct debit: mandate reference and the creditor identifier.
    DirectDebit {
        mandate: &'static str,
        creditor_id: &'static str,
    },
    /// A monthly sweep between the account and another of the customer's accounts at the same
    /// bank: whatever is above `keep` goes there, a shortfall below it comes back. (Fixed
    /// amounts would let balances wander off over 24 months; people top up and sweep.)
    TransferToOwn {
        to: usize,
        keep: i64,
    },
    Interest,
    Fee,
    /// A subscription charged to a card (it passes through pending like any card payment).
    CardSubscription {
        city: &'static str,
        mcc: &'static str,
    },
}

/// A booking that repeats on a schedule.
#[derive(Debug, Clone, Copy)]
pub struct Recurring {
    pub account: usize,
    pub schedule: Schedule,
    pub months: u16,
    /// Signed amount range in minor units (negative = debit).
    pub min: i64,
    pub max: i64,
    /// Yearly increase in per mille (salaries and rents go up).
    pub raise_permille: i64,
    pub flow: Flow,
    pub counterparty: &'static str,
    /// Counterparty IBAN, or empty.
    pub counterparty_iban: &'static str,
    /// Remittance text; `{mm}`, `{yyyy}` and `{month}` are filled in.
    pub remittance: &'static str,
}

/// A place where cards are used.
#[derive(Debug, Clone, Copy)]
pub struct MerchantTemplate {
    pub name: &'static str,
    pub city: &'static str,
    pub mcc: &'static str,
    /// Amount range in minor units (positive; card payments are debits).
    pub min: i64,
    pub max: i64,
    pub weight: u32,
    /// Chance in percent that a purchase is refunded a week or two later.
    pub refund_percent: u64,
    /// Chance in percent that the booked amount differs from the authorisation (tips, fuel).
    pub adjust_percent: u64,
}

/// Everyday card spending on one account.
#[derive(Debug, Clone, Copy)]
pub struct CardSpend {
    pub account: usize,
    /// Weights for 0, 1, 2, … card payments a day.
    pub count_weights: &'static [u32],
    pub merchants: &'static [MerchantTemplate],
}

/// Occasional cash withdrawals.
#[derive(Debug, Clone, Copy)]
pub struct Atm {
    pub account: usize,
    pub chance_percent: u64,
    pub amounts: &'static [i64],
    pub name: &'static str,
    pub city: &'static str,
}

/// The monthly settlement of a credit card from a current account.
#[derive(Debug, Clone, Copy)]
pub struct Settlement {
    pub card: usize,
    pub from: usize,
    /// The statement covers bookings up to this day of the month.
    pub statement_day: u8,
    /// The statement balance is debited on this day (next month if before the statement day).
    pub debit_day: u8,
    pub debit_text: &'static str,
    pub credit_text: &'static str,
}

/// One account of a template.
#[derive(Debug, Clone, Copy)]
pub struct AccountTemplate {
    pub kind: AccountKind,
    pub product: &'static str,
    pub nickname: &'static str,
    pub opening_balance: i64,
    pub credit_limit: i64,
}

/// Language for month names in remittance texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    Fr,
    En,
}

/// A customer's financial life at one bank.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub accounts: &'static [AccountTemplate],
    pub recurring: &'static [Recurring],
    pub card_spend: &'static [CardSpend],
    pub atm: Option<Atm>,
    pub settlement: Option<Settlement>,
    pub card_scheme: &'static str,
    pub lang: Lang,
}

/// Picks the template for a user at a bank: the full life at their home bank, a side account
/// anywhere else.
pub fn profile_for(user: &SandboxUser, bank: &BankConfig) -> Profile {
    let gbp = bank.currency == "GBP";
    match (user.home, gbp, bank.country.as_str()) {
        (Home::UnitedKingdom, true, _) => uk::PROFILE,
        (Home::France, false, "FR") => fr::PROFILE,
        (Home::Germany, false, country) if country != "FR" => de::PROFILE,
        (_, true, _) => side::UK_SIDE,
        (_, false, _) => side::EUR_SIDE,
    }
}

/// Month names for remittance texts.
pub fn month_name(lang: Lang, month: u8) -> &'static str {
    const DE: [&str; 12] = [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ];
    const FR: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let index = usize::from(month.clamp(1, 12) - 1);
    match lang {
        Lang::De => DE[index],
        Lang::Fr => FR[index],
        Lang::En => EN[index],
    }
}
