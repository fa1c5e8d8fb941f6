//! Everyday spending for the generator: card payments (pending first, booked days later, some
//! refunded), cash withdrawals, and the monthly credit-card settlement.

use time::{Date, Duration};

use super::generator::{Draft, counterparty, fill};
use crate::core::rng::Rng;
use crate::data::book::CustomerBook;
use crate::data::calendar::{at, day_in_month, is_business_day, next_business_day, previous_month};
use crate::data::model::{EntryKind, Merchant};

impl CustomerBook {
    pub(super) fn card_spending(&mut self, day: Date, rng: &mut Rng) {
        for spend in self.profile.card_spend {
            let count = rng.weighted(spend.count_weights);
            for _ in 0..count {
                let weights: Vec<u32> = spend.merchants.iter().map(|m| m.weight).collect();
                let Some(merchant) = spend.merchants.get(rng.weighted(&weights)) else {
                    continue;
                };
                let authorised = rng.range(merchant.min, merchant.max);
                let booked_amount = if rng.chance(merchant.adjust_percent) {
                    authorised + authorised * rng.range(5, 20) / 100
                } else {
                    authorised
                };
                let minutes = rng.range(7 * 60 + 30, 21 * 60 + 30);
                let auth = at(day, 0, 0) + Duration::minutes(minutes);
                let delay = rng.range(1, 3);
                let booked = at(
                    next_business_day(day.saturating_add(Duration::days(delay))),
                    5,
                    u8::try_from(minutes % 60).unwrap_or(0),
                );
                let info = Merchant {
                    name: merchant.name.into(),
                    city: merchant.city.into(),
                    category_code: merchant.mcc.into(),
                };
                let remittance = format!("{} {}", merchant.name, merchant.city);
                self.push(Draft {
                    visible_at: auth,
                    booked_at: booked,
                    pending_amount: -authorised,
                    amount: -booked_amount,
                    merchant: Some(info.clone()),
                    counterparty: counterparty(merchant.name, ""),
                    ..Draft::booked(
                        spend.account,
                        EntryKind::Card,
                        auth,
                        -booked_amount,
                        remittance.clone(),
                    )
                });
                if rng.chance(merchant.refund_percent) {
                    let refund_day =
                        next_business_day(day.saturating_add(Duration::days(rng.range(7, 21))));
                    let when = at(refund_day, 6, 15);
                    let text = format!("GUTSCHRIFT/REFUND {remittance}");
                    self.push(Draft {
                        merchant: Some(info),
                        counterparty: counterparty(merchant.name, ""),
                        ..Draft::booked(
                            spend.account,
                            EntryKind::CardRefund,
                            when,
                            booked_amount,
                            text,
                        )
                    });
                }
            }
        }
    }

    pub(super) fn cash_withdrawal(&mut self, day: Date, rng: &mut Rng) {
        let Some(atm) = self.profile.atm else { return };
        if !rng.chance(atm.chance_percent) {
            return;
        }
        let amount = atm
            .amounts
            .get(rng.index(atm.amounts.len()))
            .copied()
            .unwrap_or(5_000);
        let auth = at(day, 0, 0) + Duration::minutes(rng.range(9 * 60, 20 * 60));
        let booked = at(
            next_business_day(day.saturating_add(Duration::days(1))),
            5,
            30,
        );
        self.push(Draft {
            visible_at: auth,
            booked_at: booked,
            merchant: Some(Merchant {
                name: atm.name.into(),
                city: atm.city.into(),
                category_code: "6011".into(),
            }),
            ..Draft::booked(
                atm.account,
                EntryKind::CashWithdrawal,
                auth,
                -amount,
                format!("{} {}", atm.name, atm.city),
            )
        });
    }

    pub(super) fn card_settlement(&mut self, day: Date) {
        let Some(s) = self.profile.settlement else {
            return;
        };
        if !is_business_day(day) {
            return;
        }
        let Some(debit_date) =
            day_in_month(day.year(), day.month(), s.debit_day).map(next_business_day)
        else {
            return;
        };
        if debit_date != day {
            return;
        }
        let (year, month) = if s.debit_day < s.statement_day {
            previous_month(day.year(), day.month())
        } else {
            (day.year(), day.month())
        };
        let Some(statement) = day_in_month(year, month, s.statement_day) else {
            return;
        };
        if statement < self.first_day {
            return;
        }
        let cutoff = at(statement.saturating_add(Duration::days(1)), 0, 0);
        let opening = self.accounts.get(s.card).map_or(0, |a| a.opening_balance);
        let balance: i64 = opening
            + self
                .entries
                .iter()
                .filter(|e| e.account == s.card && e.booked_at.is_some_and(|b| b < cutoff))
                .map(|e| e.amount)
                .sum::<i64>();
        if balance >= 0 {
            return;
        }
        let when = at(day, 3, 30);
        let lang = self.profile.lang;
        let card_iban = self
            .accounts
            .get(s.card)
            .map(|a| a.iban.clone())
            .unwrap_or_default();
        let from_iban = self
            .accounts
            .get(s.from)
            .map(|a| a.iban.clone())
            .unwrap_or_default();
        let name = self.user.full_name;
        self.push(Draft {
            counterparty: counterparty(name, &card_iban),
            ..Draft::booked(
                s.from,
                EntryKind::CardSettlementDebit,
                when,
                balance,
                fill(s.debit_text, statement, lang),
            )
        });
        self.push(Draft {
            counterparty: counterparty(name, &from_iban),
            ..Draft::booked(
                s.card,
                EntryKind::CardSettlementCredit,
                when,
                -balance,
                fill(s.credit_text, statement, lang),
            )
        });
    }
}
