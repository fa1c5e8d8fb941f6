//! Turns a customer template into booking entries, one simulated day at a time. Each day's
//! randomness comes from (seed, bank, user, day), so the same seed gives the same history no
//! matter when or how often it is generated.

use time::{Date, Duration, OffsetDateTime};

use crate::core::rng::{Rng, combine};
use crate::data::book::CustomerBook;
use crate::data::calendar::{
    at, day_in_month, last_day_of_month, next_business_day, previous_business_day,
};
use crate::data::model::{Counterparty, Entry, EntryKind, Merchant};
use crate::data::templates::{Adjust, Flow, Recurring, Schedule, month_name};

/// What the generator needs to write one entry; ids and references are added by `push`.
pub(super) struct Draft {
    pub(super) account: usize,
    pub(super) kind: EntryKind,
    pub(super) visible_at: OffsetDateTime,
    pub(super) booked_at: OffsetDateTime,
    pub(super) pending_amount: i64,
    pub(super) amount: i64,
    pub(super) counterparty: Option<Counterparty>,
    pub(super) remittance: String,
    pub(super) end_to_end_id: Option<String>,
    pub(super) mandate_id: Option<String>,
    pub(super) creditor_id: Option<String>,
    pub(super) merchant: Option<Merchant>,
}

impl Draft {
    pub(super) fn booked(
        account: usize,
        kind: EntryKind,
        when: OffsetDateTime,
        amount: i64,
        remittance: String,
    ) -> Self {
        Self {
            account,
            kind,
            visible_at: when,
            booked_at: when,
            pending_amount: amount,
            amount,
            counterparty: None,
            remittance,
            end_to_end_id: None,
            mandate_id: None,
            creditor_id: None,
            merchant: None,
        }
    }
}

pub(super) fn fill(template: &str, day: Date, lang: crate::data::templates::Lang) -> String {
    let month = u8::from(day.month());
    template
        .replace("{mm}", &format!("{month:02}"))
        .replace("{yyyy}", &day.year().to_string())
        .replace("{month}", month_name(lang, month))
}

pub(super) fn counterparty(name: &str, iban: &str) -> Option<Counterparty> {
    Some(Counterparty {
        name: name.to_string(),
        iban: (!iban.is_empty()).then(|| iban.to_string()),
    })
}

/// The date a schedule falls on in the month of `day`, if any.
fn due_date(schedule: Schedule, day: Date) -> Option<Date> {
    match schedule {
        Schedule::Monthly { day: dom, adjust } => {
            let nominal = day_in_month(day.year(), day.month(), dom)?;
            Some(match adjust {
                Adjust::Forward => next_business_day(nominal),
                Adjust::Backward => previous_business_day(nominal),
            })
        }
        Schedule::LastBusinessDay => {
            last_day_of_month(day.year(), day.month()).map(previous_business_day)
        }
    }
}

impl CustomerBook {
    pub(super) fn push(&mut self, draft: Draft) {
        self.seq += 1;
        let seq = self.seq;
        let pending_hash = combine(self.seed, seq.wrapping_mul(2));
        let booked_hash = combine(self.seed, seq.wrapping_mul(2) + 1);
        let booked_day = draft.booked_at.date();
        self.entries.push(Entry {
            account: draft.account,
            kind: draft.kind,
            visible_at: draft.visible_at,
            booked_at: Some(draft.booked_at),
            value_date: booked_day,
            pending_amount: draft.pending_amount,
            amount: draft.amount,
            pending_id: format!(
                "{:020X}",
                u128::from(pending_hash) << 12 | u128::from(seq & 0xfff)
            ),
            booked_id: format!(
                "{:020X}",
                u128::from(booked_hash) << 12 | u128::from(seq & 0xfff)
            ),
            pending_reference: format!("AUTH{:012}", pending_hash % 1_000_000_000_000),
            booked_reference: format!(
                "{:04}{:02}{:02}{:08}",
                booked_day.year(),
                u8::from(booked_day.month()),
                booked_day.day(),
                booked_hash % 100_000_000
            ),
            counterparty: draft.counterparty,
            remittance: draft.remittance,
            end_to_end_id: draft.end_to_end_id,
            mandate_id: draft.mandate_id,
            creditor_id: draft.creditor_id,
            merchant: draft.merchant,
        });
    }

    pub(super) fn generate_day(&mut self, day: Date) {
        let day_seed = combine(self.seed, u64::from(day.to_julian_day().unsigned_abs()));
        let mut rng = Rng::new(day_seed);
        let recurring: Vec<(usize, Recurring)> =
            self.profile.recurring.iter().copied().enumerate().collect();
        for (index, item) in recurring {
            if item.months & (1 << (u8::from(day.month()) - 1)) != 0
                && due_date(item.schedule, day) == Some(day)
            {
                self.recurring_entry(index, &item, day);
            }
        }
        self.card_spending(day, &mut rng);
        self.cash_withdrawal(day, &mut rng);
        self.card_settlement(day);
    }

    fn recurring_entry(&mut self, index: usize, item: &Recurring, day: Date) {
        let lang = self.profile.lang;
        let month_key =
            u64::try_from(day.year()).unwrap_or(0) * 12 + u64::from(u8::from(day.month()));
        let mut rng = Rng::new(combine(combine(self.seed, index as u64 + 1000), month_key));
        let (lo, hi) = if item.min <= item.max {
            (item.min, item.max)
        } else {
            (item.max, item.min)
        };
        let base = rng.range(lo, hi);
        let years = i64::from(day.year() - self.first_day.year());
        let amount = base + base * item.raise_permille * years / 1000;
        let minute = u8::try_from(index % 50).unwrap_or(0);
        let when = at(day, 4, minute);
        let remittance = fill(item.remittance, day, lang);
        let cp = counterparty(item.counterparty, item.counterparty_iban);
        let e2e = |prefix: &str| {
            Some(format!(
                "{prefix}-{:04}{:02}-{:06}",
                day.year(),
                u8::from(day.month()),
                rng_tail(index, month_key)
            ))
        };
        let draft = match item.flow {
            Flow::Salary => Draft {
                counterparty: cp,
                end_to_end_id: e2e("SAL"),
                ..Draft::booked(item.account, EntryKind::Salary, when, amount, remittance)
            },
            Flow::IncomingTransfer => Draft {
                counterparty: cp,
                end_to_end_id: Some("NOTPROVIDED".into()),
                ..Draft::booked(
                    item.account,
                    EntryKind::IncomingTransfer,
                    when,
                    amount,
                    remittance,
                )
            },
            Flow::StandingOrder => Draft {
                counterparty: cp,
                end_to_end_id: Some("NOTPROVIDED".into()),
                ..Draft::booked(
                    item.account,
                    EntryKind::StandingOrder,
                    when,
                    amount,
                    remittance,
                )
            },
            Flow::DirectDebit {
                mandate,
                creditor_id,
            } => Draft {
                counterparty: cp,
                end_to_end_id: e2e("DD"),
                mandate_id: Some(mandate.to_string()),
                creditor_id: (!creditor_id.is_empty()).then(|| creditor_id.to_string()),
                ..Draft::booked(
                    item.account,
                    EntryKind::DirectDebit,
                    when,
                    amount,
                    remittance,
                )
            },
            Flow::TransferToOwn { to, keep } => {
                let balance = self.balances(item.account, when).booked;
                let reserve = self.balances(to, when).booked.max(0);
                let sweep = (balance - keep).max(-reserve);
                if sweep.abs() < 1_000 {
                    return;
                }
                let own = self
                    .accounts
                    .get(to)
                    .map(|a| a.iban.clone())
                    .unwrap_or_default();
                let from_iban = self
                    .accounts
                    .get(item.account)
                    .map(|a| a.iban.clone())
                    .unwrap_or_default();
                let name = self.user.full_name;
                let text = if sweep > 0 {
                    remittance
                } else {
                    fill(top_up_text(lang), day, lang)
                };
                self.push(Draft {
                    counterparty: counterparty(name, &from_iban),
                    end_to_end_id: Some("NOTPROVIDED".into()),
                    ..Draft::booked(
                        to,
                        if sweep > 0 {
                            EntryKind::TransferIn
                        } else {
                            EntryKind::TransferOut
                        },
                        when,
                        sweep,
                        text.clone(),
                    )
                });
                Draft {
                    counterparty: counterparty(name, &own),
                    end_to_end_id: Some("NOTPROVIDED".into()),
                    ..Draft::booked(
                        item.account,
                        if sweep > 0 {
                            EntryKind::TransferOut
                        } else {
                            EntryKind::TransferIn
                        },
                        when,
                        -sweep,
                        text,
                    )
                }
            }
            Flow::Interest => {
                Draft::booked(item.account, EntryKind::Interest, when, amount, remittance)
            }
            Flow::Fee => Draft::booked(item.account, EntryKind::Fee, when, amount, remittance),
            Flow::CardSubscription { city, mcc } => {
                let auth = at(day, 2, minute);
                let booked = at(
                    next_business_day(day.saturating_add(Duration::days(1))),
                    6,
                    minute,
                );
                Draft {
                    visible_at: auth,
                    booked_at: booked,
                    merchant: Some(Merchant {
                        name: item.counterparty.into(),
                        city: city.into(),
                        category_code: mcc.into(),
                    }),
                    counterparty: cp,
                    ..Draft::booked(item.account, EntryKind::Card, auth, amount, remittance)
                }
            }
        };
        self.push(draft);
    }
}

fn top_up_text(lang: crate::data::templates::Lang) -> &'static str {
    match lang {
        crate::data::templates::Lang::De => "Umbuchung vom Tagesgeld {mm}/{yyyy}",
        crate::data::templates::Lang::Fr => "Virement depuis Livret A {mm}/{yyyy}",
        crate::data::templates::Lang::En => "TRANSFER FROM SAVINGS",
    }
}

fn rng_tail(index: usize, month_key: u64) -> u64 {
    combine(index as u64, month_key) % 1_000_000
}
