//! Keyset pagination: the page and filter types are the domain's (`kontor_domain::list`), so the
//! services and the API use them without naming the store.

pub use kontor_domain::list::{ListFilter, Page, PageKey};
