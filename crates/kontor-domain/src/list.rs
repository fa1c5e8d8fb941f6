//! Lists as values: keyset pages and what a list is narrowed to. A page key is the position
//! after the last row returned: rows are ordered by an integer sort value (a creation time in
//! microseconds, or a date as a day number) and then by id, which is stable under concurrent
//! inserts, unlike offsets. The stores fill these, the services pass them through and the API
//! turns them into cursors and filters, so each layer speaks the same words.

use time::Date;

use crate::UserId;
use crate::bank::BankId;
use crate::event::EventType;
use crate::id::EventId;
use crate::time::Timestamp;
use crate::transaction::TransactionStatus;
use crate::webhook::DeliveryState;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub sort: i64,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this page was the last.
    pub next: Option<PageKey>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra row only tells that
    /// another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, key_of: impl Fn(&T) -> PageKey) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(key_of) } else { None };
        Page { items: rows, next }
    }
}

/// What a list of a tenant's connections or payments is narrowed to; `S` is the record's status.
/// Each condition is optional; together they all apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter<S> {
    pub user: Option<UserId>,
    pub status: Option<S>,
    pub bank: Option<BankId>,
    /// Created at or after this instant.
    pub created_after: Option<Timestamp>,
    /// Created before this instant.
    pub created_before: Option<Timestamp>,
}

impl<S> Default for ListFilter<S> {
    fn default() -> Self {
        Self {
            user: None,
            status: None,
            bank: None,
            created_after: None,
            created_before: None,
        }
    }
}

impl<S> ListFilter<S> {
    /// Everything of one user.
    pub fn user(user: &UserId) -> Self {
        Self {
            user: Some(user.clone()),
            ..Self::default()
        }
    }
}

/// What a list of a tenant's events is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub event_type: Option<EventType>,
    pub user: Option<UserId>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// What a list of one webhook endpoint's deliveries is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub event: Option<EventId>,
}

/// What a list of an account's transactions is narrowed to (dates inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub status: Option<TransactionStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: i64) -> PageKey {
        PageKey {
            sort: n,
            id: n.to_string(),
        }
    }

    #[test]
    fn extra_row_signals_a_next_page() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| key(*n));
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next, Some(key(2)));

        let last = Page::from_rows(vec![1, 2], 2, |n| key(*n));
        assert_eq!(last.next, None);
        let empty = Page::from_rows(Vec::<i64>::new(), 2, |n| key(*n));
        assert!(empty.items.is_empty() && empty.next.is_none());
    }
}
