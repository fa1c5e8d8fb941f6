//! The in-memory state of every simulated bank. Each bank has one mutex; handlers lock it, do
//! their (synchronous) work and unlock, so there is never an await while it is held.

pub mod consent;
mod effects;
pub mod faults;
pub mod flows;
pub mod payment;
pub mod persist;
pub mod sca;
pub mod uk;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::{Date, Duration, OffsetDateTime};

use crate::config::BankConfig;
use crate::core::clock::SimClock;
use crate::core::rng::{combine, hash_str};
use crate::data::book::CustomerBook;
use crate::data::model::{Counterparty, Entry, EntryKind};
use crate::data::users;
use consent::{BgConsent, UsageCounter};
use faults::FaultState;
use payment::Payment;
use sca::Authorisation;
use uk::{
    AccessToken, AuthCode, IdempotencyRecord, IdempotentOp, RefreshToken, UkAccountConsent,
    UkPaymentConsent,
};

/// How many days of history the generated data covers.
pub const HISTORY_DAYS: i64 = 730;

/// Everything one bank knows.
#[derive(Debug)]
pub struct BankState {
    pub books: Vec<CustomerBook>,
    pub consents: BTreeMap<String, BgConsent>,
    pub payments: BTreeMap<String, Payment>,
    pub authorisations: BTreeMap<String, Authorisation>,
    pub uk_account_consents: BTreeMap<String, UkAccountConsent>,
    pub uk_payment_consents: BTreeMap<String, UkPaymentConsent>,
    pub access_tokens: BTreeMap<String, AccessToken>,
    pub refresh_tokens: BTreeMap<String, RefreshToken>,
    pub codes: BTreeMap<String, AuthCode>,
    pub idempotency: BTreeMap<(String, IdempotentOp, String), IdempotencyRecord>,
    pub usage: UsageCounter,
    /// Sessions of the decoupled-SCA banking app page: token → (user, expiry).
    pub app_sessions: BTreeMap<String, (&'static str, OffsetDateTime)>,
    id_seed: u64,
    id_counter: u64,
    generated_through: Date,
}

/// Why a payment could not be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionError {
    InsufficientFunds,
    NoDebtor,
    Unknown,
}

impl BankState {
    fn new(config: &BankConfig, seed: u64, start: OffsetDateTime) -> Self {
        let history_start = start.date().saturating_sub(Duration::days(HISTORY_DAYS));
        let mut books: Vec<CustomerBook> = config
            .customers
            .iter()
            .filter_map(|name| users::find(name))
            .map(|user| CustomerBook::open(config, user, seed, history_start))
            .collect();
        for book in &mut books {
            book.ensure_generated(start.date());
        }
        Self {
            books,
            consents: BTreeMap::new(),
            payments: BTreeMap::new(),
            authorisations: BTreeMap::new(),
            uk_account_consents: BTreeMap::new(),
            uk_payment_consents: BTreeMap::new(),
            access_tokens: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            codes: BTreeMap::new(),
            idempotency: BTreeMap::new(),
            usage: UsageCounter::default(),
            app_sessions: BTreeMap::new(),
            id_seed: combine(seed, hash_str(&config.id)),
            id_counter: 0,
            generated_through: start.date(),
        }
    }

    /// What the state file keeps of this bank.
    pub fn snapshot(&self, customers: &[String]) -> persist::BankSnapshot {
        persist::BankSnapshot {
            customers: customers.to_vec(),
            id_counter: self.id_counter,
            consents: self.consents.clone(),
            payments: self.payments.clone(),
            authorisations: self.authorisations.clone(),
            uk_account_consents: self.uk_account_consents.clone(),
            uk_payment_consents: self.uk_payment_consents.clone(),
            access_tokens: self.access_tokens.clone(),
            refresh_tokens: self.refresh_tokens.clone(),
            codes: self.codes.clone(),
            idempotency: self.idempotency.clone(),
            usage: self.usage.clone(),
        }
    }

    /// Takes back what a state file kept (on a freshly opened bank): the resources, the id
    /// counter, and the bookings of the payments that were executed.
    fn restore(&mut self, saved: persist::BankSnapshot) {
        self.id_counter = saved.id_counter;
        self.consents = saved.consents;
        self.payments = saved.payments;
        self.authorisations = saved.authorisations;
        self.uk_account_consents = saved.uk_account_consents;
        self.uk_payment_consents = saved.uk_payment_consents;
        self.access_tokens = saved.access_tokens;
        self.refresh_tokens = saved.refresh_tokens;
        self.codes = saved.codes;
        self.idempotency = saved.idempotency;
        self.usage = saved.usage;
        let executed: Vec<String> = self
            .payments
            .values()
            .filter(|p| p.executed())
            .map(|p| p.id.clone())
            .collect();
        for id in executed {
            self.book_payment(&id);
        }
    }

    /// A new resource id. Ids follow from the seed and the order of requests, so a test run
    /// that repeats its requests sees the same ids.
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.id_counter += 1;
        let value = combine(self.id_seed, self.id_counter);
        format!("{prefix}{value:016x}")
    }

    /// Brings generated data and consent expiry up to `now`.
    fn sync(&mut self, now: OffsetDateTime) {
        let today = now.date();
        if today > self.generated_through {
            for book in &mut self.books {
                book.ensure_generated(today);
            }
            self.generated_through = today;
        }
        for consent in self.consents.values_mut() {
            consent.refresh(today);
        }
    }

    /// The book of a user at this bank.
    pub fn book_of(&self, username: &str) -> Option<usize> {
        self.books.iter().position(|b| b.user.username == username)
    }

    /// Finds an account by its `resourceId` / `AccountId`.
    pub fn find_account(&self, resource_id: &str) -> Option<(usize, usize)> {
        self.books
            .iter()
            .enumerate()
            .find_map(|(u, b)| b.account_index(resource_id).map(|a| (u, a)))
    }

    /// Finds an account by IBAN (or, for UK, by sort code and account number run together).
    pub fn find_by_identifier(&self, identifier: &str) -> Option<(usize, usize)> {
        self.books.iter().enumerate().find_map(|(u, b)| {
            b.accounts
                .iter()
                .position(|a| {
                    a.iban == identifier
                        || a.sort_code
                            .as_ref()
                            .zip(a.account_number.as_ref())
                            .is_some_and(|(s, n)| format!("{s}{n}") == identifier)
                })
                .map(|a| (u, a))
        })
    }

    /// Cancels an accepted payment that has not settled: the payment becomes CANC and its
    /// pending debit (and the creditor's coming credit) leave the books. False when it cannot be
    /// cancelled any more.
    pub fn cancel_accepted_payment(&mut self, payment_id: &str, now: OffsetDateTime) -> bool {
        let Some(payment) = self.payments.get_mut(payment_id) else {
            return false;
        };
        if !payment.cancel_accepted(now) {
            return false;
        }
        let h = hash_str(payment_id);
        let ours = [
            format!("{:020X}", u128::from(combine(h, 1)) << 8),
            format!("{:020X}", u128::from(combine(h, 5)) << 8),
        ];
        for book in &mut self.books {
            book.entries
                .retain(|entry| !ours.contains(&entry.pending_id));
        }
        true
    }

    /// Executes an authorised payment at most once: funds check, then a pending debit that
    /// books when the payment settles (with a new id, as card and transfer bookings do).
    pub fn execute_payment(
        &mut self,
        payment_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), ExecutionError> {
        let payment = self
            .payments
            .get(payment_id)
            .ok_or(ExecutionError::Unknown)?;
        if !payment.is_received() {
            return Ok(());
        }
        let (u, a) = payment.debtor.ok_or(ExecutionError::NoDebtor)?;
        let book = self.books.get(u).ok_or(ExecutionError::NoDebtor)?;
        if book.balances(a, now).available < payment.amount {
            if let Some(p) = self.payments.get_mut(payment_id) {
                p.reject(now);
                p.lacked_funds = true;
            }
            return Err(ExecutionError::InsufficientFunds);
        }
        let Some(payment) = self.payments.get_mut(payment_id) else {
            return Err(ExecutionError::Unknown);
        };
        if !payment.accept(now) {
            return Ok(());
        }
        self.book_payment(payment_id);
        Ok(())
    }

    /// Books an accepted payment: a pending debit on the debtor's account that books when the
    /// payment settles, and the credit on the creditor's account if it is at this bank. The
    /// entries follow from the payment alone (a restored state books its payments again).
    fn book_payment(&mut self, payment_id: &str) {
        let Some(payment) = self.payments.get(payment_id) else {
            return;
        };
        let (Some((u, a)), Some(accepted_at), Some(settles_at)) =
            (payment.debtor, payment.accepted_at(), payment.settles_at())
        else {
            return;
        };
        let Some(book) = self.books.get(u) else {
            return;
        };
        let debtor_iban = book.accounts.get(a).map(|acc| acc.iban.clone());
        let debtor_name = book.user.full_name;
        let now = accepted_at;
        let h = hash_str(&payment.id);
        let remittance = payment.remittance.clone().unwrap_or_default();
        let creditor = payment.creditor.clone();
        let entry = Entry {
            account: a,
            kind: EntryKind::InitiatedPayment,
            visible_at: now,
            booked_at: Some(settles_at),
            value_date: settles_at.date(),
            pending_amount: -payment.amount,
            amount: -payment.amount,
            pending_id: format!("{:020X}", u128::from(combine(h, 1)) << 8),
            booked_id: format!("{:020X}", u128::from(combine(h, 2)) << 8),
            pending_reference: format!("AUTH{:012}", combine(h, 3) % 1_000_000_000_000),
            booked_reference: format!("PIS{:013}", combine(h, 4) % 10_000_000_000_000),
            counterparty: Some(Counterparty {
                name: creditor.name.clone(),
                iban: (creditor.scheme == "iban" || creditor.scheme == "UK.OBIE.IBAN")
                    .then(|| creditor.identification.clone()),
            }),
            remittance,
            end_to_end_id: payment
                .end_to_end_id
                .clone()
                .or_else(|| Some("NOTPROVIDED".into())),
            mandate_id: None,
            creditor_id: None,
            merchant: None,
        };
        let credit = Entry {
            kind: EntryKind::ReceivedPayment,
            visible_at: settles_at,
            pending_amount: payment.amount,
            amount: payment.amount,
            counterparty: Some(Counterparty {
                name: debtor_name.to_string(),
                iban: debtor_iban,
            }),
            pending_id: format!("{:020X}", u128::from(combine(h, 5)) << 8),
            booked_id: format!("{:020X}", u128::from(combine(h, 6)) << 8),
            ..entry.clone()
        };
        if let Some(book) = self.books.get_mut(u) {
            book.entries.push(entry);
        }
        if let Some((cu, ca)) = self.find_by_identifier(&creditor.identification)
            && let Some(book) = self.books.get_mut(cu)
        {
            book.entries.push(Entry {
                account: ca,
                ..credit
            });
        }
    }
}

/// One simulated bank: its configuration, state and faults.
#[derive(Debug)]
pub struct Bank {
    pub config: BankConfig,
    /// Absolute URL of the bank's root (`http://host:port/<id>`).
    pub base_url: String,
    pub clock: Arc<SimClock>,
    state: Mutex<BankState>,
    /// Set when a handler changed the state, until the sandbox saved it.
    changed: AtomicBool,
    faults: Mutex<FaultState>,
    /// Key of the sandbox's response signatures (UK `x-jws-signature`) outside strict mode.
    pub signing_key: Vec<u8>,
    /// Strict mode (`--require-tpp-certificates`): certificates, signatures, FAPI clients.
    pub tpp: Option<Arc<crate::tpp::TppGate>>,
}

impl Bank {
    pub fn new(
        config: BankConfig,
        base_url: String,
        clock: Arc<SimClock>,
        seed: u64,
        tpp: Option<Arc<crate::tpp::TppGate>>,
    ) -> Self {
        let state = BankState::new(&config, seed, clock.now());
        let signing_key = format!("kontor-sandbox-{}-{seed}", config.id).into_bytes();
        let fault_seed = combine(seed, hash_str(&config.id));
        Self {
            config,
            base_url,
            clock,
            state: Mutex::new(state),
            changed: AtomicBool::new(false),
            faults: Mutex::new(FaultState::new(fault_seed)),
            signing_key,
            tpp,
        }
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// An absolute URL under this bank's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The page where a PSU performs redirect SCA for an authorisation.
    pub fn sca_page_url(&self, authorisation_id: &str) -> String {
        self.url(&format!("/sca/{authorisation_id}"))
    }

    /// Locks the bank's state, brought up to the current simulated time. Changing it through
    /// the guard marks the bank for saving.
    pub fn lock(&self) -> BankGuard<'_> {
        let mut guard = self.raw_lock();
        guard.sync(self.clock.now());
        BankGuard {
            guard,
            changed: &self.changed,
        }
    }

    fn raw_lock(&self) -> MutexGuard<'_, BankState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// What the state file keeps of this bank.
    pub fn snapshot(&self) -> persist::BankSnapshot {
        self.raw_lock().snapshot(&self.config.customers)
    }

    /// Takes back what a state file kept, before the bank serves. Refused when the bank's
    /// customers changed since (accounts are addressed by position).
    pub fn restore(&self, saved: persist::BankSnapshot) -> Result<(), String> {
        if saved.customers != self.config.customers {
            return Err(format!(
                "bank `{}` was saved with customers {:?}, it now has {:?}",
                self.id(),
                saved.customers,
                self.config.customers
            ));
        }
        self.raw_lock().restore(saved);
        Ok(())
    }

    /// True (once) if the state changed since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// Marks the state as changed again (a save failed: the next one tries again).
    pub fn mark_changed(&self) {
        self.changed.store(true, Ordering::Release);
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        match self.faults.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The locked state of a bank. Reading goes through `Deref`; anything that changes it goes
/// through `DerefMut`, which marks the bank for saving.
#[derive(Debug)]
pub struct BankGuard<'a> {
    guard: MutexGuard<'a, BankState>,
    changed: &'a AtomicBool,
}

impl Deref for BankGuard<'_> {
    type Target = BankState;

    fn deref(&self) -> &BankState {
        &self.guard
    }
}

impl DerefMut for BankGuard<'_> {
    fn deref_mut(&mut self) -> &mut BankState {
        self.changed.store(true, Ordering::Release);
        &mut self.guard
    }
}
