//! The demo tenant's users: one per sandbox user, each in the region of their home, so that
//! each one's connect page opens on their own banks.

use kontor_domain::connection::Language;

#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    /// The login name at the sandbox banks, and the tenant's `external_id` for them.
    pub username: &'static str,
    pub full_name: &'static str,
    /// The hub region (cell) their data lives in.
    pub region: &'static str,
    /// The country the bank list opens on (the connect page's `country`), when it is not the
    /// region's own: the demo has no French cell, so carol lives in `de` and looks in `FR`.
    pub country: Option<&'static str>,
    /// The connect page's language; the browser's when `None`.
    pub language: Option<Language>,
}

pub const DEMO_USERS: [DemoUser; 3] = [
    DemoUser {
        username: "alice",
        full_name: "Alice Schneider",
        region: "de",
        country: None,
        language: None,
    },
    DemoUser {
        username: "bob",
        full_name: "Bob Thompson",
        region: "uk",
        country: None,
        language: None,
    },
    DemoUser {
        username: "carol",
        full_name: "Carol Dubois",
        region: "de",
        country: Some("FR"),
        language: Some(Language::Fr),
    },
];
