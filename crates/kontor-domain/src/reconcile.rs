//! What a sync changes: given the transactions already kept for an account and a fresh fetch
//! from the bank, decide which to insert, update and remove — without duplicates, without
//! losing anything, and keeping a transaction's hub id when it books, even if the bank gave the
//! booked entry different ids than the pending one (banks do).

use std::collections::{HashMap, HashSet};

use time::{Date, Duration};

use crate::id::TransactionId;
use crate::transaction::{BankTransaction, DedupKey, TransactionStatus, dedup_keys};

/// A transaction as kept by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTransaction {
    pub id: TransactionId,
    pub key: DedupKey,
    pub tx: BankTransaction,
}

/// What the fetch covered, so that only pending transactions the bank *would* have returned are
/// taken as vanished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchWindow {
    /// The earliest date asked for; `None` means the bank's whole history.
    pub from: Option<Date>,
    /// Whether pending transactions were asked for.
    pub pending_included: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    pub insert: Vec<(DedupKey, BankTransaction)>,
    /// Existing transactions with new content or a new key (pending → booked).
    pub update: Vec<(TransactionId, DedupKey, BankTransaction)>,
    /// Pending transactions the bank no longer reports.
    pub remove: Vec<TransactionId>,
    /// How many of the updates were pending transactions that booked.
    pub booked: usize,
    pub unchanged: usize,
}

impl SyncPlan {
    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }
}

/// How far a booking may lie from the pending entry's date: card payments settle within days,
/// some take over a week.
const EARLIEST_BOOKING: Duration = Duration::days(-3);
const LATEST_BOOKING: Duration = Duration::days(14);

fn normalised(value: Option<&String>) -> Option<String> {
    value
        .map(|v| {
            v.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .filter(|v| !v.is_empty())
}

/// Fields compare equal, or one side does not say.
fn compatible(a: Option<&String>, b: Option<&String>) -> bool {
    match (normalised(a), normalised(b)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Whether `fetched` can be the later form of the stored pending `pending`, and how far apart
/// their dates are (smaller is a better match).
fn successor_distance(pending: &BankTransaction, fetched: &BankTransaction) -> Option<i64> {
    if pending.amount != fetched.amount
        || !compatible(
            pending.counterparty_name.as_ref(),
            fetched.counterparty_name.as_ref(),
        )
        || !compatible(pending.remittance.as_ref(), fetched.remittance.as_ref())
        || !compatible(
            pending.end_to_end_id.as_ref(),
            fetched.end_to_end_id.as_ref(),
        )
    {
        return None;
    }
    match (pending.date(), fetched.date()) {
        (Some(p), Some(f)) => {
            let gap = f - p;
            (EARLIEST_BOOKING..=LATEST_BOOKING)
                .contains(&gap)
                .then(|| gap.whole_days().abs())
        }
        _ => Some(0),
    }
}

fn in_window(tx: &BankTransaction, window: FetchWindow) -> bool {
    match (window.from, tx.date()) {
        (Some(from), Some(date)) => date >= from,
        _ => true,
    }
}

pub fn reconcile(
    stored: &[StoredTransaction],
    fetched: Vec<BankTransaction>,
    window: FetchWindow,
) -> SyncPlan {
    let keys = dedup_keys(&fetched);
    let by_key: HashMap<&DedupKey, &StoredTransaction> =
        stored.iter().map(|s| (&s.key, s)).collect();
    let mut plan = SyncPlan::default();
    let mut matched: HashSet<&TransactionId> = HashSet::new();
    let mut seen_keys: HashSet<DedupKey> = HashSet::new();
    let mut unmatched: Vec<(DedupKey, BankTransaction)> = Vec::new();

    // 1. The same key as before: the same transaction, perhaps with new content.
    for (key, tx) in keys.into_iter().zip(fetched) {
        if !seen_keys.insert(key.clone()) {
            continue; // the bank listed it twice (overlapping pages)
        }
        match by_key.get(&key) {
            Some(existing) => {
                matched.insert(&existing.id);
                if existing.tx == tx {
                    plan.unchanged += 1;
                } else {
                    if existing.tx.status == TransactionStatus::Pending
                        && tx.status == TransactionStatus::Booked
                    {
                        plan.booked += 1;
                    }
                    plan.update.push((existing.id.clone(), key, tx));
                }
            }
            None => unmatched.push((key, tx)),
        }
    }

    // 2. Pending transactions not seen under their old key may have booked under a new one.
    let mut orphans: Vec<&StoredTransaction> = stored
        .iter()
        .filter(|s| s.tx.status == TransactionStatus::Pending && !matched.contains(&s.id))
        .collect();
    orphans.sort_by_key(|s| (s.tx.date(), s.id.clone()));
    let mut remaining = Vec::with_capacity(unmatched.len());
    for (key, tx) in unmatched {
        let best = orphans
            .iter()
            .enumerate()
            .filter_map(|(i, s)| successor_distance(&s.tx, &tx).map(|d| (d, i)))
            .min();
        match best {
            Some((_, index)) => {
                let pending = orphans.remove(index);
                if tx.status == TransactionStatus::Booked {
                    plan.booked += 1;
                }
                plan.update.push((pending.id.clone(), key, tx));
            }
            None => remaining.push((key, tx)),
        }
    }

    // 3. Whatever is left is new; pending entries the bank stopped reporting are gone.
    plan.insert = remaining;
    if window.pending_included {
        plan.remove = orphans
            .into_iter()
            .filter(|s| in_window(&s.tx, window))
            .map(|s| s.id.clone())
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;
    use crate::transaction::tests::tx;
    use TransactionStatus::{Booked, Pending};
    use proptest::prelude::*;

    const ALL: FetchWindow = FetchWindow {
        from: None,
        pending_included: true,
    };

    /// Applies a plan to a stored set, as a store would.
    fn apply(stored: &[StoredTransaction], plan: SyncPlan) -> Vec<StoredTransaction> {
        let mut out: Vec<StoredTransaction> = stored
            .iter()
            .filter(|s| !plan.remove.contains(&s.id))
            .cloned()
            .collect();
        for (id, key, tx) in plan.update {
            let slot = out.iter_mut().find(|s| s.id == id).unwrap();
            slot.key = key;
            slot.tx = tx;
        }
        let region = Region::parse("de").unwrap();
        for (key, tx) in plan.insert {
            out.push(StoredTransaction {
                id: TransactionId::generate(&region),
                key,
                tx,
            });
        }
        out
    }

    fn with_ids(mut t: BankTransaction, id: &str, reference: &str) -> BankTransaction {
        t.transaction_id = Some(id.into());
        t.entry_reference = Some(reference.into());
        t
    }

    #[test]
    fn first_sync_inserts_everything_and_a_repeat_changes_nothing() {
        let fetched = vec![
            with_ids(tx("-3.50", (2026, 11, 2), Booked), "B1", "E1"),
            tx("-3.50", (2026, 11, 2), Booked),
            tx("-3.50", (2026, 11, 2), Booked),
            with_ids(tx("-20.00", (2026, 11, 3), Pending), "P1", "EP1"),
        ];
        let plan = reconcile(&[], fetched.clone(), ALL);
        assert_eq!(plan.insert.len(), 4);
        let stored = apply(&[], plan);
        let again = reconcile(&stored, fetched, ALL);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.unchanged, 4);
    }

    #[test]
    fn pending_that_books_under_new_ids_keeps_its_hub_id() {
        let pending = with_ids(tx("-20.00", (2026, 11, 3), Pending), "P1", "EP1");
        let stored = apply(&[], reconcile(&[], vec![pending], ALL));
        let hub_id = stored[0].id.clone();

        let booked = with_ids(tx("-20.00", (2026, 11, 5), Booked), "B9", "E9");
        let plan = reconcile(&stored, vec![booked.clone()], ALL);
        assert!(plan.insert.is_empty() && plan.remove.is_empty(), "{plan:?}");
        assert_eq!(plan.booked, 1);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].0, hub_id);
        let after = apply(&stored, plan);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].id, hub_id);
        assert_eq!(after[0].tx, booked);
        assert!(reconcile(&after, vec![booked], ALL).is_empty());
    }

    #[test]
    fn vanished_pending_is_removed_but_booked_history_is_kept() {
        let old = with_ids(tx("-9.99", (2026, 10, 1), Booked), "B1", "E1");
        let pending = with_ids(tx("-42.00", (2026, 11, 3), Pending), "P1", "EP1");
        let stored = apply(&[], reconcile(&[], vec![old.clone(), pending], ALL));
        // The bank now reports neither: the pending one was cancelled, the booked one is
        // older than this fetch's window.
        let window = FetchWindow {
            from: Some(time::macros::date!(2026 - 11 - 01)),
            pending_included: true,
        };
        let plan = reconcile(&stored, vec![], window);
        assert_eq!(plan.remove.len(), 1);
        assert!(plan.insert.is_empty() && plan.update.is_empty());
        let removed = stored.iter().find(|s| s.id == plan.remove[0]).unwrap();
        assert_eq!(removed.tx.status, Pending);

        // A fetch of booked transactions only says nothing about pending ones.
        let booked_only = FetchWindow {
            from: None,
            pending_included: false,
        };
        assert!(reconcile(&stored, vec![old], booked_only).remove.is_empty());
    }

    #[test]
    fn a_different_amount_is_not_the_same_transaction() {
        let pending = tx("-20.00", (2026, 11, 3), Pending);
        let stored = apply(&[], reconcile(&[], vec![pending], ALL));
        let other = tx("-25.00", (2026, 11, 4), Booked);
        let plan = reconcile(&stored, vec![other], ALL);
        assert_eq!(plan.insert.len(), 1);
        assert_eq!(plan.remove.len(), 1);
        assert_eq!(plan.booked, 0);
    }

    #[test]
    fn two_equal_pending_payments_book_one_each() {
        let a = with_ids(tx("-3.50", (2026, 11, 2), Pending), "P1", "E1");
        let b = with_ids(tx("-3.50", (2026, 11, 2), Pending), "P2", "E2");
        let stored = apply(&[], reconcile(&[], vec![a, b], ALL));
        let booked = vec![
            with_ids(tx("-3.50", (2026, 11, 3), Booked), "B1", "F1"),
            with_ids(tx("-3.50", (2026, 11, 3), Booked), "B2", "F2"),
        ];
        let plan = reconcile(&stored, booked, ALL);
        assert_eq!(plan.update.len(), 2);
        assert_eq!(plan.booked, 2);
        assert!(plan.insert.is_empty() && plan.remove.is_empty());
        let ids: HashSet<_> = plan.update.iter().map(|(id, _, _)| id.clone()).collect();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn duplicates_within_one_fetch_are_kept_once() {
        let t = with_ids(tx("-1.00", (2026, 11, 2), Booked), "B1", "E1");
        let plan = reconcile(&[], vec![t.clone(), t], ALL);
        assert_eq!(plan.insert.len(), 1);
    }

    fn arb_tx() -> impl Strategy<Value = BankTransaction> {
        (
            prop::sample::select(vec!["-3.50", "-20.00", "1500.00", "-0.99"]),
            1u8..=28,
            prop::bool::ANY,
            prop::option::of("[A-Z]{2}[0-9]{3}"),
        )
            .prop_map(|(amount, day, pending, id)| {
                let status = if pending { Pending } else { Booked };
                let mut t = tx(amount, (2026, 11, day), status);
                t.transaction_id = id;
                t
            })
    }

    proptest! {
        /// Syncing the same fetch twice changes nothing the second time, and the first sync
        /// keeps every distinct transaction of the fetch exactly once.
        #[test]
        fn reconcile_is_idempotent(fetched in prop::collection::vec(arb_tx(), 0..30)) {
            let plan = reconcile(&[], fetched.clone(), ALL);
            let distinct: HashSet<_> = dedup_keys(&fetched).into_iter().collect();
            prop_assert_eq!(plan.insert.len(), distinct.len());
            let stored = apply(&[], plan);
            let again = reconcile(&stored, fetched, ALL);
            prop_assert!(again.is_empty(), "{:?}", again);
        }

        /// Whatever the earlier state, a sync never loses a booked transaction the hub kept.
        #[test]
        fn booked_history_is_never_removed(
            first in prop::collection::vec(arb_tx(), 0..20),
            second in prop::collection::vec(arb_tx(), 0..20),
        ) {
            let stored = apply(&[], reconcile(&[], first, ALL));
            let plan = reconcile(&stored, second, ALL);
            for id in &plan.remove {
                let gone = stored.iter().find(|s| &s.id == id).unwrap();
                prop_assert_eq!(gone.tx.status, Pending);
            }
        }
    }
}
