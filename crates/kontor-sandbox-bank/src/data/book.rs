//! One customer's accounts and booking entries at one bank, and the balances derived from them.

use time::{Date, Duration, OffsetDateTime};

use crate::config::BankConfig;
use crate::core::iban::national_account;
use crate::core::rng::{combine, hash_str};
use crate::data::model::{Account, AccountKind, Entry, EntryStatus};
use crate::data::templates::{Profile, profile_for};
use crate::data::users::SandboxUser;

/// Balances of one account at one instant, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    /// Booked entries up to the start of today.
    pub closing_booked: i64,
    /// Booked entries up to now.
    pub booked: i64,
    /// Sum of pending entries (usually negative: card authorisations).
    pub pending: i64,
    /// What can be spent now: booked + pending + credit line.
    pub available: i64,
    pub credit_limit: i64,
}

/// A customer's accounts and entries at one bank; entries grow as simulated days pass.
#[derive(Debug)]
pub struct CustomerBook {
    pub user: &'static SandboxUser,
    pub accounts: Vec<Account>,
    pub entries: Vec<Entry>,
    pub(super) profile: Profile,
    pub(super) seed: u64,
    pub(super) first_day: Date,
    pub(super) next_day: Date,
    pub(super) seq: u64,
}

/// A deterministic bank code for a bank id, with the right number of digits for its country.
fn bank_code(bank: &BankConfig) -> u64 {
    let h = hash_str(&bank.id);
    match bank.country.as_str() {
        "DE" => 10_000_000 + h % 89_999_999,
        "FR" | "AT" => 10_000 + h % 89_999,
        "GB" => 200_000 + h % 699_999,
        _ => 100 + h % 899,
    }
}

impl CustomerBook {
    /// Opens the customer's accounts. Account numbers depend on bank and user only, never on
    /// the seed, so they can be written down in docs and tests.
    pub fn open(
        bank: &BankConfig,
        user: &'static SandboxUser,
        seed: u64,
        history_start: Date,
    ) -> Self {
        let profile = profile_for(user, bank);
        let letters: String = bank.bic.chars().take(4).collect();
        let code = bank_code(bank);
        let accounts = profile
            .accounts
            .iter()
            .enumerate()
            .map(|(index, template)| {
                let key = format!("{}/{}/{index}", bank.id, user.username);
                let h = hash_str(&key);
                let national = national_account(&bank.country, code, &letters, h % 1_000_000_000)
                    .unwrap_or_else(|| fallback_account(&bank.country, h));
                let pan_prefix = if profile.card_scheme == "MasterCard" {
                    "535522"
                } else {
                    "492181"
                };
                let opened_years = i64::try_from(2 + h % 7).unwrap_or(3);
                Account {
                    resource_id: format!("acc-{:012x}", combine(h, 1) & 0xffff_ffff_ffff),
                    owner: user.username,
                    owner_name: user.full_name,
                    kind: template.kind,
                    currency: bank.currency.clone(),
                    iban: national.iban,
                    bban: national.bban,
                    sort_code: national.sort_code,
                    account_number: national.account_number,
                    masked_pan: format!("{pan_prefix}******{:04}", h % 10_000),
                    product: template.product.to_string(),
                    nickname: template.nickname.to_string(),
                    opening_balance: template.opening_balance,
                    credit_limit: template.credit_limit,
                    opened_on: history_start.saturating_sub(Duration::days(365 * opened_years)),
                }
            })
            .collect();
        Self {
            user,
            accounts,
            entries: Vec::new(),
            profile,
            seed: combine(combine(seed, hash_str(&bank.id)), hash_str(user.username)),
            first_day: history_start,
            next_day: history_start,
            seq: 0,
        }
    }

    /// Generates entries for every day up to and including `through`.
    pub fn ensure_generated(&mut self, through: Date) {
        while self.next_day <= through {
            let day = self.next_day;
            self.generate_day(day);
            self.next_day = day.saturating_add(Duration::days(1));
        }
    }

    pub fn account_index(&self, resource_id: &str) -> Option<usize> {
        self.accounts
            .iter()
            .position(|a| a.resource_id == resource_id)
    }

    /// Balances of one account as seen at `now`.
    pub fn balances(&self, account: usize, now: OffsetDateTime) -> Balances {
        let start_of_day = now.date().midnight().assume_utc();
        let (opening, limit) = self
            .accounts
            .get(account)
            .map_or((0, 0), |a| (a.opening_balance, a.credit_limit));
        let mut closing_booked = opening;
        let mut booked = opening;
        let mut pending = 0;
        for entry in self.entries.iter().filter(|e| e.account == account) {
            match entry.status_at(now) {
                EntryStatus::Booked => {
                    booked += entry.amount;
                    if entry.booked_at.is_some_and(|b| b < start_of_day) {
                        closing_booked += entry.amount;
                    }
                }
                EntryStatus::Pending => pending += entry.pending_amount,
                EntryStatus::Hidden => {}
            }
        }
        Balances {
            closing_booked,
            booked,
            pending,
            available: booked + pending + limit,
            credit_limit: limit,
        }
    }

    /// Entries of one account visible at `now`, newest first, with the balance after each booked
    /// entry (pending ones have none).
    pub fn visible_entries(
        &self,
        account: usize,
        now: OffsetDateTime,
    ) -> Vec<(&Entry, EntryStatus, Option<i64>)> {
        let opening = self.accounts.get(account).map_or(0, |a| a.opening_balance);
        let mut booked: Vec<&Entry> = Vec::new();
        let mut pending: Vec<&Entry> = Vec::new();
        for entry in self.entries.iter().filter(|e| e.account == account) {
            match entry.status_at(now) {
                EntryStatus::Booked => booked.push(entry),
                EntryStatus::Pending => pending.push(entry),
                EntryStatus::Hidden => {}
            }
        }
        booked.sort_by(|a, b| (a.booked_at, &a.booked_id).cmp(&(b.booked_at, &b.booked_id)));
        let mut running = opening;
        let mut out: Vec<(&Entry, EntryStatus, Option<i64>)> = booked
            .into_iter()
            .map(|e| {
                running += e.amount;
                (e, EntryStatus::Booked, Some(running))
            })
            .collect();
        out.reverse();
        pending.sort_by(|a, b| (b.visible_at, &b.pending_id).cmp(&(a.visible_at, &a.pending_id)));
        out.extend(pending.into_iter().map(|e| (e, EntryStatus::Pending, None)));
        out
    }

    /// The day the generated history starts.
    pub fn first_day(&self) -> Date {
        self.first_day
    }

    /// True for card accounts (their balances and limits read differently).
    pub fn is_card(&self, account: usize) -> bool {
        self.accounts
            .get(account)
            .is_some_and(|a| a.kind == AccountKind::CreditCard)
    }
}

/// Used only for countries without a national format (validation keeps them out).
fn fallback_account(country: &str, h: u64) -> crate::core::iban::NationalAccount {
    let bban = format!("{:016}", h % 10_000_000_000_000_000);
    crate::core::iban::NationalAccount {
        iban: crate::core::iban::from_bban(country, &bban),
        bban,
        sort_code: None,
        account_number: None,
    }
}
