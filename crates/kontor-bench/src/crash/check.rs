//! The verdict of a crash run: every Idempotency-Key against the hub's payments and the
//! sandbox bank's ledger, matched by the key's unique amount at its bank.
//!
//! The rules:
//! - A key that got a 201 has exactly one payment at the hub (the one every 201 named), in a
//!   final status. If that status is `completed`, the bank's ledger holds exactly one payment
//!   for the key that moved money (`executed`); if it is `rejected` or `cancelled`, none that
//!   did. Those are the only final statuses (`PaymentStatus::is_final`): `rejected` is the bank
//!   (or the user at the bank) refusing, `cancelled` the user cancelling or the authorisation
//!   lapsing before the bank had an authorised payment; in neither case may money move.
//! - A key that never got a 201 has no payment at the bank at all. The hub may hold one
//!   payment for it (accepted, the answer lost), which must be final and not `completed`.
//! - Every payment at the hub and at the bank belongs to a key; none is left unfinished.

use std::collections::BTreeMap;

use kontor_sandbox_bank::PaymentRecord;
use serde::Serialize;

use super::driver::KeyRecord;

/// A payment as `GET /v1/payments` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HubPayment {
    pub id: String,
    pub status: String,
    pub bank_id: String,
    pub amount: String,
    pub currency: String,
    pub bank_payment_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub kind: String,
    pub key: Option<String>,
    pub payment_id: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub keys: usize,
    pub keys_with_201: usize,
    pub keys_without_201: usize,
    /// Keys without a 201 for which the hub nevertheless holds a payment (the answer was lost).
    pub keys_without_201_but_a_hub_payment: usize,
    pub hub_payments: usize,
    /// Final status at the hub → how many payments, for keys with a 201 and without.
    pub hub_status_with_201: BTreeMap<String, u64>,
    pub hub_status_without_201: BTreeMap<String, u64>,
    /// Users sent back to the tenant with `status=pending` after authorising at the bank (the
    /// callback had to be retried): the final status of those payments.
    pub told_pending: BTreeMap<String, u64>,
    pub ledger_payments: usize,
    pub ledger_executed: usize,
    /// Bank status → how many ledger payments.
    pub ledger_status: BTreeMap<String, u64>,
    pub violations: Vec<Violation>,
    /// Not against the rules, but worth a look.
    pub notes: Vec<Violation>,
}

/// `"12.34"` → 1234. Amounts here always have two decimals or none.
pub fn minor_units(value: &str) -> Option<i64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<2}").parse().ok()?
    };
    whole.checked_mul(100)?.checked_add(fraction)
}

const FINAL: [&str; 3] = ["completed", "rejected", "cancelled"];

fn push(
    list: &mut Vec<Violation>,
    kind: &str,
    key: Option<&str>,
    id: Option<&str>,
    detail: String,
) {
    list.push(Violation {
        kind: kind.to_owned(),
        key: key.map(str::to_owned),
        payment_id: id.map(str::to_owned),
        detail,
    });
}

pub fn check(keys: &[KeyRecord], hub: &[HubPayment], ledger: &[PaymentRecord]) -> Verdict {
    let mut v = Verdict {
        keys: keys.len(),
        hub_payments: hub.len(),
        ledger_payments: ledger.len(),
        ledger_executed: ledger.iter().filter(|p| p.executed).count(),
        ..Verdict::default()
    };
    for p in ledger {
        *v.ledger_status
            .entry(format!("{:?}", p.status))
            .or_default() += 1;
    }
    let slot = |bank: &str, amount: &str| (bank.to_owned(), minor_units(amount).unwrap_or(-1));
    let mut hub_by_slot: BTreeMap<(String, i64), Vec<&HubPayment>> = BTreeMap::new();
    for p in hub {
        hub_by_slot
            .entry(slot(&p.bank_id, &p.amount))
            .or_default()
            .push(p);
    }
    let mut bank_by_slot: BTreeMap<(String, i64), Vec<&PaymentRecord>> = BTreeMap::new();
    for p in ledger {
        bank_by_slot
            .entry(slot(&p.bank_id, &p.amount))
            .or_default()
            .push(p);
    }
    let mut known = std::collections::BTreeSet::new();

    for key in keys {
        let s = slot(&key.bank_id, &key.amount);
        known.insert(s.clone());
        let at_hub = hub_by_slot.get(&s).cloned().unwrap_or_default();
        let at_bank = bank_by_slot.get(&s).cloned().unwrap_or_default();
        let executed: Vec<&&PaymentRecord> = at_bank.iter().filter(|p| p.executed).collect();
        let k = Some(key.key.as_str());
        let bank_list = || {
            at_bank
                .iter()
                .map(|p| format!("{} {:?} executed={}", p.payment_id, p.status, p.executed))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if at_hub.len() > 1 {
            let ids: Vec<&str> = at_hub.iter().map(|p| p.id.as_str()).collect();
            push(
                &mut v.violations,
                "duplicate at the hub",
                k,
                ids.first().copied(),
                format!(
                    "{} payments at the hub for one key: {}",
                    at_hub.len(),
                    ids.join(", ")
                ),
            );
        }
        for p in &at_hub {
            if !FINAL.contains(&p.status.as_str()) {
                push(
                    &mut v.violations,
                    "not final",
                    k,
                    Some(&p.id),
                    format!("status `{}` at the end (bank: {})", p.status, bank_list()),
                );
            }
        }
        if key.got_201() {
            v.keys_with_201 += 1;
            if key.payment_ids.len() > 1 {
                push(
                    &mut v.violations,
                    "two payments for one key",
                    k,
                    None,
                    format!("the 201s named {:?}", key.payment_ids),
                );
            }
            let Some(mine) = at_hub.iter().find(|p| key.payment_ids.contains(&p.id)) else {
                push(
                    &mut v.violations,
                    "lost",
                    k,
                    key.payment_ids.iter().next().map(String::as_str),
                    format!(
                        "the 201 named {:?}, which the hub does not list (it lists {} for this amount)",
                        key.payment_ids,
                        at_hub.len()
                    ),
                );
                continue;
            };
            *v.hub_status_with_201
                .entry(mine.status.clone())
                .or_default() += 1;
            if key
                .auth_outcome
                .as_deref()
                .is_some_and(|o| o.starts_with("tenant:pending"))
            {
                *v.told_pending.entry(mine.status.clone()).or_default() += 1;
            }
            let completed = mine.status == "completed";
            let refused = mine.status == "rejected" || mine.status == "cancelled";
            if completed && executed.len() != 1 {
                push(
                    &mut v.violations,
                    if executed.is_empty() {
                        "completed without money moving"
                    } else {
                        "duplicate at the bank"
                    },
                    k,
                    Some(&mine.id),
                    format!(
                        "{} payment(s) moved money at the bank: {}",
                        executed.len(),
                        bank_list()
                    ),
                );
            } else if completed
                && mine.bank_payment_id.as_deref() != Some(executed[0].payment_id.as_str())
            {
                push(
                    &mut v.notes,
                    "bank reference differs",
                    k,
                    Some(&mine.id),
                    format!(
                        "the hub's bank_payment_id is {:?}, the payment that moved money is {}",
                        mine.bank_payment_id, executed[0].payment_id
                    ),
                );
            } else if refused && !executed.is_empty() {
                push(
                    &mut v.violations,
                    "money moved for a refused payment",
                    k,
                    Some(&mine.id),
                    format!("the hub says {}, the bank: {}", mine.status, bank_list()),
                );
            }
            if at_bank.len() > executed.len().max(1) {
                push(
                    &mut v.notes,
                    "extra bank resources",
                    k,
                    Some(&mine.id),
                    format!(
                        "{} payments at the bank for one key: {}",
                        at_bank.len(),
                        bank_list()
                    ),
                );
            }
        } else {
            v.keys_without_201 += 1;
            if !at_bank.is_empty() {
                push(
                    &mut v.violations,
                    "bank payment without a 201",
                    k,
                    at_hub.first().map(|p| p.id.as_str()),
                    bank_list(),
                );
            }
            if let Some(p) = at_hub.first() {
                v.keys_without_201_but_a_hub_payment += 1;
                *v.hub_status_without_201
                    .entry(p.status.clone())
                    .or_default() += 1;
                if p.status == "completed" {
                    push(
                        &mut v.violations,
                        "completed without a 201",
                        k,
                        Some(&p.id),
                        "nobody authorised it, yet it completed".to_owned(),
                    );
                }
            }
        }
    }
    for (s, payments) in &hub_by_slot {
        if !known.contains(s) {
            for p in payments {
                push(
                    &mut v.violations,
                    "unknown hub payment",
                    None,
                    Some(&p.id),
                    format!("{} {} {} matches no key", p.bank_id, p.amount, p.status),
                );
            }
        }
    }
    for (s, payments) in &bank_by_slot {
        if !known.contains(s) {
            for p in payments {
                push(
                    &mut v.violations,
                    "unknown bank payment",
                    None,
                    None,
                    format!(
                        "{} {} {} {:?} matches no key",
                        p.bank_id, p.payment_id, p.amount, p.status
                    ),
                );
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn amounts_become_minor_units() {
        assert_eq!(minor_units("1.00"), Some(100));
        assert_eq!(minor_units("3.5"), Some(350));
        assert_eq!(minor_units("12"), Some(1200));
        assert_eq!(minor_units("1.234"), None);
        assert_eq!(minor_units("x"), None);
    }

    fn key(name: &str, amount: &str, ids: &[&str]) -> KeyRecord {
        KeyRecord {
            key: name.to_owned(),
            bank_id: "sonnenbank".to_owned(),
            user_id: "usr".to_owned(),
            amount: amount.to_owned(),
            currency: "EUR".to_owned(),
            body: serde_json::Value::Null,
            payment_ids: ids.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
            posts: 1,
            abandoned: ids.is_empty(),
            gave_up: false,
            auth_outcome: None,
            auth_attempts: 0,
            events: Vec::new(),
        }
    }

    fn hub(id: &str, amount: &str, status: &str) -> HubPayment {
        HubPayment {
            id: id.to_owned(),
            status: status.to_owned(),
            bank_id: "sonnenbank".to_owned(),
            amount: amount.to_owned(),
            currency: "EUR".to_owned(),
            bank_payment_id: Some(format!("b-{id}")),
        }
    }

    fn kinds(v: &Verdict) -> Vec<&str> {
        v.violations.iter().map(|x| x.kind.as_str()).collect()
    }

    #[test]
    fn a_clean_run_has_no_violations() {
        let keys = [
            key("a", "1.00", &["p1"]),
            key("b", "1.01", &[]),
            key("c", "1.02", &["p3"]),
        ];
        let payments = [
            hub("p1", "1.00", "completed"),
            hub("p2", "1.01", "cancelled"),
            hub("p3", "1.02", "cancelled"),
        ];
        let v = check(&keys, &payments, &[]);
        // p1 completed but nothing moved at the bank: the one violation.
        assert_eq!(kinds(&v), ["completed without money moving"]);
        assert_eq!(v.keys_with_201, 2);
        assert_eq!(v.keys_without_201_but_a_hub_payment, 1);
    }

    #[test]
    fn duplicates_unfinished_and_strangers_are_violations() {
        let keys = [key("a", "1.00", &["p1", "p9"])];
        let payments = [
            hub("p1", "1.00", "authorised"),
            hub("p9", "1.00", "completed"),
            hub("px", "7.00", "completed"),
        ];
        let v = check(&keys, &payments, &[]);
        let found = kinds(&v);
        for kind in [
            "duplicate at the hub",
            "not final",
            "two payments for one key",
            "unknown hub payment",
        ] {
            assert!(found.contains(&kind), "{kind} in {found:?}");
        }
    }
}
