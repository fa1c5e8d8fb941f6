//! One mechanism for the hub's closed vocabularies: an enum whose every variant is one fixed
//! word on the wire or in storage. [`words!`](crate::words!) writes the enum, its `ALL`, its
//! `as_str`, its `parse` (an `Option`, as callers read a stored word) and a `FromStr` whose
//! error names the kind of word refused.

use std::fmt;

/// A word that is not one of a vocabulary's words. `kind` names the vocabulary
/// (`"payment scheme"`); the word itself is not kept, as it may be anything a caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownWord {
    pub kind: &'static str,
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a known {}", self.kind)
    }
}

impl std::error::Error for UnknownWord {}

/// Declares an enum of words:
///
/// ```ignore
/// kontor_domain::words!(
///     /// Docs.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
///     pub enum Colour as "colour" { Red => "red", DarkBlue => "dark_blue" }
///     display serialize
/// );
/// ```
///
/// The attributes are the enum's own (derives included); `as "…"` names the kind for
/// [`UnknownWord`]. After the braces, `display` adds `Display` (the word) and `serialize` adds a
/// `serde::Serialize` writing the word.
#[macro_export]
macro_rules! words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $kind:literal {
            $($(#[$vmeta:meta])* $variant:ident => $word:literal),* $(,)?
        }
        $($extra:ident)*
    ) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every word of the vocabulary, in declaration order.
            pub const ALL: [$name; [$($name::$variant),*].len()] = [$($name::$variant),*];

            /// The word, byte for byte as stored and sent.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)* }
            }

            /// The variant a word names, exactly (no case folding, no aliases).
            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($word => Some($name::$variant),)* _ => None }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::words::UnknownWord;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                $name::parse(raw).ok_or($crate::words::UnknownWord { kind: $kind })
            }
        }

        $($crate::words!(@$extra $name);)*
    };
    (@display $name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (@serialize $name:ident) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::UnknownWord;

    /// Every word of every vocabulary parses back to its variant (by `parse` and `FromStr`), no
    /// two variants share a word, and an unknown word (or a word in other case) is refused with
    /// the vocabulary's kind.
    macro_rules! check {
        ($($ty:ty => $kind:literal),* $(,)?) => {$({
            let mut seen = std::collections::BTreeSet::new();
            for v in <$ty>::ALL {
                assert_eq!(<$ty>::parse(v.as_str()), Some(v), "{}", v.as_str());
                assert_eq!(v.as_str().parse::<$ty>(), Ok(v));
                assert!(seen.insert(v.as_str()), "{} twice", v.as_str());
                if v.as_str() != v.as_str().to_ascii_uppercase() {
                    assert_eq!(<$ty>::parse(&v.as_str().to_ascii_uppercase()), None);
                }
            }
            assert!(!seen.is_empty());
            assert_eq!(<$ty>::parse("no-such-word"), None);
            let refused = "no-such-word".parse::<$ty>().unwrap_err();
            assert_eq!(refused, UnknownWord { kind: $kind });
            assert_eq!(refused.to_string(), concat!("not a known ", $kind));
        })*};
    }

    #[test]
    fn every_word_round_trips_and_unknown_words_are_refused() {
        use crate::account::{AccountKind, BalanceKind};
        use crate::bank::Standard;
        use crate::certificate::ExpiryStatus;
        use crate::connection::{ConnectionEvent, FailureReason};
        use crate::payment::{PaymentPhase, PaymentScheme};
        use crate::transaction::TransactionStatus;
        use crate::webhook::{
            AttemptError, DeliveryFailure, DeliveryState, DisabledReason, EndpointStatus,
        };
        check!(
            AccountKind => "account kind",
            BalanceKind => "balance kind",
            Standard => "standard",
            ExpiryStatus => "expiry status",
            FailureReason => "failure reason",
            ConnectionEvent => "connection event",
            PaymentPhase => "payment phase",
            PaymentScheme => "payment scheme",
            TransactionStatus => "transaction status",
            AttemptError => "attempt error",
            DeliveryFailure => "delivery failure",
            DeliveryState => "delivery state",
            DisabledReason => "disabled reason",
            EndpointStatus => "endpoint status",
        );
    }

    /// The enums that also derive serde (with a `rename_all`) write and read the same word.
    #[test]
    fn serde_form_is_the_word() {
        use crate::account::{AccountKind, BalanceKind};
        use crate::bank::Standard;
        use crate::connection::{ConnectionEvent, FailureReason};
        use crate::payment::{PaymentPhase, PaymentScheme};
        use crate::transaction::TransactionStatus;
        macro_rules! same {
            ($($ty:ty),*) => {$(
                for v in <$ty>::ALL {
                    let json = serde_json::to_value(v).unwrap();
                    assert_eq!(json, serde_json::Value::from(v.as_str()));
                    assert_eq!(serde_json::from_value::<$ty>(json).unwrap(), v);
                }
            )*};
        }
        same!(
            AccountKind,
            BalanceKind,
            Standard,
            ConnectionEvent,
            FailureReason,
            PaymentPhase,
            PaymentScheme,
            TransactionStatus
        );
    }

    #[test]
    fn display_and_serialize_write_the_word() {
        use crate::bank::Standard;
        use crate::webhook::DeliveryFailure;
        assert_eq!(Standard::UkOpenBanking.to_string(), "uk-open-banking");
        assert_eq!(
            serde_json::to_string(&DeliveryFailure::EndpointDeleted).unwrap(),
            "\"endpoint_deleted\""
        );
    }
}
