//! What counts as a finding, value by value: ids of another region in a cell, user-linked data
//! in the control database, and plaintext where a sealed value (or a keyed hash) belongs. The
//! plaintext heuristics name what a value looks like (an IBAN, an e-mail address, JSON) without
//! ever repeating it.

use std::sync::LazyLock;

use kontor_domain::iban::Iban;
use regex::Regex;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A row in a cell whose id names another region.
    WrongRegion,
    /// A user's id, an e-mail address or an IBAN in the control database.
    UserDataInControl,
    /// A column that holds only sealed values (or keyed hashes) holds something else.
    PlaintextInSealedColumn,
    /// An e-mail address or IBAN in a plaintext column of a cell.
    PersonalDataInPlaintext,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::WrongRegion => "wrong_region",
            FindingKind::UserDataInControl => "user_data_in_control",
            FindingKind::PlaintextInSealedColumn => "plaintext_in_sealed_column",
            FindingKind::PersonalDataInPlaintext => "personal_data_in_plaintext",
        }
    }
}

/// Ids of records that belong to one region: `prefix_cell_random`, the cell being the region
/// alone (cell 1) or `<region>-<n>`; the second group is the region.
static REGION_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(usr|con|acc|txn|evt|pay|dlv)_([a-z][a-z0-9]{1,9})(?:-(?:[2-9]|[1-9][0-9]{1,3}))?_[0-7][0-9a-hjkmnp-tv-z]{25}\b",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});
static IBAN_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// The prefix every value of a sealed column starts with, by (table, column).
pub fn sealed_prefix(cell: bool, table: &str, column: &str) -> Option<&'static str> {
    let prefix = match (cell, table, column) {
        (true, "users", "external_id") => "xi1.",
        (true, "users", "data_key") => "w1.",
        (true, "users", "external_id_sealed")
        | (true, "connections", "session" | "psu_id" | "first_sync_psu_ip")
        | (true, "accounts", "details")
        | (true, "transactions", "details")
        | (true, "payments", "details" | "session") => "s1.",
        (false, "idempotency_keys", "idempotency_key") => "ik1.",
        (false, "idempotency_keys", "request_hash") => "rh1.",
        (false, "tenant_keys", "data_key")
        | (false, "key_canary", "wrapped")
        | (false, "deployment_keys", "wrapped") => "w1.",
        _ => return None,
    };
    Some(prefix)
}

/// The regions named by the ids in `value`, with the id's kind.
pub fn region_ids(value: &str) -> impl Iterator<Item = (&str, &str)> {
    REGION_ID.captures_iter(value).filter_map(|c| {
        let kind = c.get(1)?.as_str();
        let region = c.get(2)?.as_str();
        Some((kind, region))
    })
}

/// What personal data `value` visibly holds, if any: an IBAN (checksum verified) or an e-mail.
pub fn personal_data(value: &str) -> Option<&'static str> {
    if IBAN_SHAPE
        .find_iter(value)
        .any(|m| Iban::parse(&m.as_str().replace(' ', "")).is_ok())
    {
        return Some("an IBAN");
    }
    if EMAIL.is_match(value) {
        return Some("an e-mail address");
    }
    None
}

/// What a value that should have been sealed looks like.
pub fn describe_plaintext(value: &str) -> &'static str {
    if let Some(what) = personal_data(value) {
        return what;
    }
    let trimmed = value.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(value).is_ok()
    {
        return "JSON";
    }
    "text"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristics_name_what_they_see() {
        assert_eq!(
            personal_data("pay to DE89 3704 0044 0532 0130 00"),
            Some("an IBAN")
        );
        assert_eq!(personal_data("DE89370400440532013000"), Some("an IBAN"));
        // The shape without the checksum is not an IBAN.
        assert_eq!(personal_data("DE00370400440532013000"), None);
        assert_eq!(
            personal_data("x ada@example.com y"),
            Some("an e-mail address")
        );
        assert_eq!(personal_data("s1.AAAABBBBDE89370400440532013000"), None);
        assert_eq!(
            describe_plaintext(r#"{"iban":"GB33BUKB20201555555555"}"#),
            "an IBAN"
        );
        assert_eq!(describe_plaintext(r#"{"name":"Ada"}"#), "JSON");
        assert_eq!(describe_plaintext("customer-1"), "text");
        let ids: Vec<_> =
            region_ids("usr_uk_0000000000000000000000000a and pay_de_0000000000000000000000000b")
                .collect();
        assert_eq!(ids, [("usr", "uk"), ("pay", "de")]);
        // An id of a region's second cell is of that region.
        let ids: Vec<_> =
            region_ids("usr_de-2_0000000000000000000000000a, con_uk-17_0000000000000000000000000b")
                .collect();
        assert_eq!(ids, [("usr", "de"), ("con", "uk")]);
        assert_eq!(region_ids("ten_0000000000000000000000000a").count(), 0);
        assert_eq!(sealed_prefix(true, "users", "external_id"), Some("xi1."));
        assert_eq!(sealed_prefix(true, "users", "tenant_id"), None);
    }
}
