//! Typed, opaque identifiers. Each id starts with a type prefix; ids of data that lives in a
//! region also carry the region (`usr_uk_…`), so any node can route a request to the right cell
//! without a lookup. The random part is 128 bits from the OS-seeded CSPRNG: ids are never
//! sequential and cannot be guessed from one another.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

use crate::cell::{CellId, HomeCell};
use crate::region::{Region, truncate_for_error};

/// Length of the random part: 128 bits in Crockford base32 (5 bits per character).
const RANDOM_LEN: usize = 26;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{got:?} is not a {kind} id (expected the prefix {prefix}_)")]
    WrongPrefix {
        kind: &'static str,
        prefix: &'static str,
        got: String,
    },
    #[error("{got:?} is not a well-formed {kind} id")]
    Malformed { kind: &'static str, got: String },
}

fn encode_random(value: u128) -> String {
    let mut out = [0u8; RANDOM_LEN];
    for (i, slot) in out.iter_mut().rev().enumerate() {
        let index = (value >> (5 * i)) & 0x1f;
        // `index` is masked to five bits, so it always indexes the 32-entry alphabet.
        *slot = ALPHABET[usize::from(u8::try_from(index).unwrap_or(0))];
    }
    out.iter().map(|&b| char::from(b)).collect()
}

fn is_random_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    bytes.len() == RANDOM_LEN
        // 26 characters carry 130 bits; the top character may only use the low three.
        && bytes[0] <= b'7'
        && bytes.iter().all(|&b| in_alphabet(b))
}

/// Whether `b` is one of [`ALPHABET`]'s characters, by byte class: a `contains` over the
/// alphabet is a `memchr` call per byte, which made parsing the ids of a 50-row transaction page
/// 7 % of the hub's CPU (`docs/BENCHMARKS.md`, profile of the transaction page).
fn in_alphabet(b: u8) -> bool {
    b.is_ascii_digit() || (b.is_ascii_lowercase() && !matches!(b, b'i' | b'l' | b'o' | b'u'))
}

fn random_part() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode_random(u128::from_be_bytes(bytes))
}

/// The random part of a derived id: the first 128 bits of SHA-256 over the prefix and the
/// parts, each length-prefixed so that no two lists of parts collide by concatenation.
fn derived_part(prefix: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in std::iter::once(prefix).chain(parts.iter().copied()) {
        hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    encode_random(u128::from_be_bytes(first))
}

/// Declares an id whose data is global to the deployment (kept in the control database).
macro_rules! global_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            /// What every id of this kind matches, as a regular expression (for API documents).
            pub const PATTERN: &'static str =
                concat!("^", $prefix, "_[0-7][0-9a-hjkmnp-tv-z]{25}$");

            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, random_part()))
            }

            pub fn parse(raw: &str) -> Result<Self, IdError> {
                let rest = raw.strip_prefix(concat!($prefix, "_")).ok_or_else(|| {
                    IdError::WrongPrefix { kind: $kind, prefix: $prefix, got: truncate_for_error(raw) }
                })?;
                if is_random_part(rest) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(IdError::Malformed { kind: $kind, got: truncate_for_error(raw) })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        id_common_impls!($name);
    };
}

/// Declares an id of data that lives in a cell: `prefix_cell_random`, where the cell segment is
/// the region alone for a region's cell 1 and `<region>-<n>` for its cell n ≥ 2 (`CellId`).
macro_rules! regional_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            raw: String,
            cell: CellId,
        }

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            /// What every id of this kind matches, as a regular expression (for API documents):
            /// the prefix, the home cell (a region code, with `-<n>` for a cell from 2 to 9999),
            /// and the 26-character random part.
            pub const PATTERN: &'static str = concat!(
                "^", $prefix,
                "_[a-z][a-z0-9]{1,9}(-([2-9]|[1-9][0-9]{1,3}))?_[0-7][0-9a-hjkmnp-tv-z]{25}$"
            );

            /// A new id for a record created in `home` (a cell, or a region for its cell 1).
            pub fn generate(home: &(impl HomeCell + ?Sized)) -> Self {
                let cell = home.home_cell();
                Self {
                    raw: format!("{}_{}_{}", $prefix, cell.segment(), random_part()),
                    cell,
                }
            }

            /// An id fixed by `parts` (what the record is about) rather than random, so that
            /// recording the same thing twice yields the same id and a store can keep one.
            pub fn derived(home: &(impl HomeCell + ?Sized), parts: &[&str]) -> Self {
                let cell = home.home_cell();
                Self {
                    raw: format!("{}_{}_{}", $prefix, cell.segment(), derived_part($prefix, parts)),
                    cell,
                }
            }

            pub fn parse(raw: &str) -> Result<Self, IdError> {
                let rest = raw.strip_prefix(concat!($prefix, "_")).ok_or_else(|| {
                    IdError::WrongPrefix { kind: $kind, prefix: $prefix, got: truncate_for_error(raw) }
                })?;
                let malformed = || IdError::Malformed { kind: $kind, got: truncate_for_error(raw) };
                let (segment, random) = rest.split_once('_').ok_or_else(malformed)?;
                let cell = CellId::parse_segment(segment).ok_or_else(malformed)?;
                if !is_random_part(random) {
                    return Err(malformed());
                }
                Ok(Self { raw: raw.to_owned(), cell })
            }

            /// The region whose cells hold this record.
            pub fn region(&self) -> &Region {
                self.cell.region()
            }

            /// The record's home cell: where it was created. A record moved since is found
            /// through the route the move recorded; the id never changes.
            pub fn cell(&self) -> &CellId {
                &self.cell
            }

            pub fn as_str(&self) -> &str {
                &self.raw
            }
        }

        id_common_impls!($name);
    };
}

macro_rules! id_common_impls {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

global_id!(
    /// A tenant: a fintech customer of the hub.
    TenantId, "ten", "tenant"
);
global_id!(
    /// An OAuth2 client of a tenant; doubles as the `client_id` the tenant authenticates with.
    ApiClientId, "cli", "client"
);
regional_id!(
    /// An end user (PSU) of a tenant, living in one region.
    UserId, "usr", "user"
);
regional_id!(
    /// A user's consent at one bank and its lifecycle.
    ConnectionId, "con", "connection"
);
regional_id!(
    /// A bank account read under a connection.
    AccountId, "acc", "account"
);
regional_id!(
    /// A transaction on an account; stable across syncs, even when the bank renumbers it.
    TransactionId, "txn", "transaction"
);
regional_id!(
    /// An entry in the event log (and the `webhook-id` of its deliveries).
    EventId, "evt", "event"
);
regional_id!(
    /// A payment initiated for a user.
    PaymentId, "pay", "payment"
);
global_id!(
    /// A tenant's webhook endpoint (kept in the control database: endpoints are per tenant).
    WebhookEndpointId, "whe", "webhook endpoint"
);
regional_id!(
    /// One event's delivery to one webhook endpoint, kept next to the event in the user's cell.
    DeliveryId, "dlv", "delivery"
);

#[cfg(test)]
mod tests {

    #[test]
    fn the_alphabet_check_accepts_exactly_the_alphabet() {
        for b in 0..=u8::MAX {
            assert_eq!(super::in_alphabet(b), ALPHABET.contains(&b), "byte {b}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn uk() -> Region {
        Region::parse("uk").unwrap()
    }

    #[test]
    fn generated_ids_have_prefix_region_and_parse_back() {
        let id = UserId::generate(&uk());
        assert!(id.as_str().starts_with("usr_uk_"), "{id}");
        assert_eq!(id.as_str().len(), "usr_uk_".len() + RANDOM_LEN);
        assert_eq!(UserId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.region(), &uk());

        let tenant = TenantId::generate();
        assert!(tenant.as_str().starts_with("ten_"));
        assert_eq!(TenantId::parse(tenant.as_str()), Ok(tenant));
    }

    #[test]
    fn ids_are_not_sequential() {
        let a = UserId::generate(&uk());
        let b = UserId::generate(&uk());
        assert_ne!(a, b);
        // Consecutive ids share no common random prefix beyond chance.
        let common = a
            .as_str()
            .bytes()
            .zip(b.as_str().bytes())
            .skip("usr_uk_".len())
            .take_while(|(x, y)| x == y)
            .count();
        assert!(common < 8, "suspiciously similar ids {a} {b}");
    }

    #[test]
    fn rejects_wrong_prefix_and_malformed_parts() {
        let good = UserId::generate(&uk()).to_string();
        let random = &good["usr_uk_".len()..];
        assert!(matches!(
            UserId::parse(&format!("acc_uk_{random}")),
            Err(IdError::WrongPrefix { .. })
        ));
        for bad in [
            format!("usr_UK_{random}"),
            format!("usr_u_{random}"),
            format!("usr_uk_{}", &random[1..]),
            format!("usr_uk_{random}0"),
            format!("usr_uk_{}", random.replace(|_: char| true, "i")),
            format!("usr_uk_9{}", &random[1..]),
            format!("usr_{random}"),
            "usr_".to_owned(),
            "usr_uk_".to_owned(),
        ] {
            assert!(
                matches!(UserId::parse(&bad), Err(IdError::Malformed { .. })),
                "{bad} should be malformed"
            );
        }
        assert!(TenantId::parse("ten_").is_err());
        assert!(TenantId::parse(&format!("ten_uk_{random}")).is_err());
    }

    /// The patterns are regular expressions kept by hand next to `parse`; they must accept
    /// exactly what `parse` accepts, or API clients would be told the wrong shape.
    #[test]
    fn patterns_agree_with_parse() {
        let user = regex::Regex::new(UserId::PATTERN).unwrap();
        let endpoint = regex::Regex::new(WebhookEndpointId::PATTERN).unwrap();
        for _ in 0..200 {
            assert!(user.is_match(UserId::generate(&uk()).as_str()));
            assert!(endpoint.is_match(WebhookEndpointId::generate().as_str()));
        }
        let random = &UserId::generate(&uk()).to_string()["usr_uk_".len()..];
        for candidate in [
            format!("usr_uk_{random}"),
            format!("usr_abcdefghij_{random}"),
            format!("usr_u_{random}"),
            format!("usr_abcdefghijk_{random}"),
            format!("usr_1k_{random}"),
            format!("usr_uk_9{}", &random[1..]),
            format!("usr_uk_{}", random.replace(|_: char| true, "i")),
            format!("usr_uk_{random}0"),
            format!("acc_uk_{random}"),
            format!("usr_{random}"),
            format!("usr_uk-2_{random}"),
            format!("usr_uk-10_{random}"),
            format!("usr_uk-9999_{random}"),
            format!("usr_uk-1_{random}"),
            format!("usr_uk-0_{random}"),
            format!("usr_uk-02_{random}"),
            format!("usr_uk-x_{random}"),
            format!("usr_uk-10000_{random}"),
            format!("usr_uk-99999999999_{random}"),
            format!("usr_uk-_{random}"),
            format!("usr_uk-2-3_{random}"),
        ] {
            assert_eq!(
                user.is_match(&candidate),
                UserId::parse(&candidate).is_ok(),
                "{candidate}"
            );
        }
        for candidate in [
            format!("whe_{random}"),
            format!("whe_uk_{random}"),
            format!("whe_8{}", &random[1..]),
        ] {
            assert_eq!(
                endpoint.is_match(&candidate),
                WebhookEndpointId::parse(&candidate).is_ok(),
                "{candidate}"
            );
        }
    }

    #[test]
    fn ids_name_their_home_cell() {
        let random = &UserId::generate(&uk()).to_string()["usr_uk_".len()..];
        let old = UserId::parse(&format!("usr_uk_{random}")).unwrap();
        assert_eq!(old.cell(), &CellId::first(uk()));
        assert_eq!(old.cell().to_string(), "uk-1");
        assert_eq!(old.region(), &uk());

        let second = CellId::parse("uk-2").unwrap();
        let id = UserId::generate(&second);
        assert!(id.as_str().starts_with("usr_uk-2_"), "{id}");
        assert_eq!(UserId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.cell(), &second);
        assert_eq!(id.region(), &uk());

        // A region names its cell 1, with the old spelling.
        let first = UserId::generate(&CellId::first(uk()));
        assert!(first.as_str().starts_with("usr_uk_"), "{first}");
        assert_eq!(
            EventId::derived(&uk(), &["a"]),
            EventId::derived(&CellId::first(uk()), &["a"])
        );
        assert_ne!(
            EventId::derived(&uk(), &["a"]).as_str(),
            EventId::derived(&second, &["a"]).as_str()
        );

        for bad in [
            "uk-0",
            "uk-1",
            "uk-x",
            "uk-99999999999",
            "uk-",
            "uk-01",
            "UK-2",
        ] {
            assert!(
                matches!(
                    UserId::parse(&format!("usr_{bad}_{random}")),
                    Err(IdError::Malformed { .. })
                ),
                "{bad} should be malformed"
            );
        }
    }

    #[test]
    fn encoding_covers_the_full_range() {
        assert_eq!(encode_random(0), "0".repeat(RANDOM_LEN));
        let max = encode_random(u128::MAX);
        assert!(max.starts_with('7'));
        assert!(is_random_part(&max));
    }

    proptest! {
        #[test]
        fn every_value_round_trips(
            value: u128,
            region in "[a-z][a-z0-9]{1,9}",
            number in 1u16..=9999,
        ) {
            let region = Region::parse(&region).unwrap();
            let cell = CellId::new(region.clone(), number).unwrap();
            let raw = format!("usr_{}_{}", cell.segment(), encode_random(value));
            let id = UserId::parse(&raw).unwrap();
            prop_assert_eq!(id.as_str(), raw.as_str());
            prop_assert_eq!(id.region(), &region);
            prop_assert_eq!(id.cell(), &cell);
            prop_assert!(regex::Regex::new(UserId::PATTERN).unwrap().is_match(&raw));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,80}") {
            let _ = UserId::parse(&raw);
            let _ = TenantId::parse(&raw);
        }
    }
}
