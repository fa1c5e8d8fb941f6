//! Payment statuses: Kontor's own small set that tenants see, the ISO 20022 codes banks report
//! under PSD2 and how they map onto it, and the transition rules that keep a payment's status
//! history from going backwards when bank reports arrive late or out of order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::region::truncate_for_error;

/// A payment's status as tenants see it: one vocabulary for both standards, by the stage the
/// payment is at, whatever words its bank uses for that stage ([`PaymentStatus::vocabulary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Not yet authorised by the user (at the hub, or at the bank's SCA).
    Pending,
    /// Authorised by the user and accepted by the bank; the money has not settled yet. Berlin
    /// Group banks say ACTC or ACSP here, UK banks `AcceptedSettlementInProcess`: the same stage.
    /// (Releases before this one had a separate `executing` for ACSP; stored rows with it are
    /// read as `authorised`, see [`PaymentStatus::parse`].)
    Authorised,
    /// Settled.
    Completed,
    /// Refused by the bank or the user.
    Rejected,
    /// Cancelled before execution, or recalled afterwards.
    Cancelled,
    /// The bank has stopped telling us: no final status after polling for days.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal payment transition: {from} -> {to}")]
pub struct IllegalTransition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a payment status")]
pub struct PaymentStatusError(pub String);

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Authorised,
        PaymentStatus::Completed,
        PaymentStatus::Rejected,
        PaymentStatus::Cancelled,
        PaymentStatus::Unknown,
    ];

    /// The wire and storage name, the same as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Authorised => "authorised",
            PaymentStatus::Completed => "completed",
            PaymentStatus::Rejected => "rejected",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Unknown => "unknown",
        }
    }

    /// The word, as stored or sent. `executing`, which earlier releases stored for a payment
    /// the bank had accepted for settlement (ACSP), is the same stage as `authorised` and reads
    /// as it: rows written before the vocabulary was made one stay readable.
    pub fn parse(raw: &str) -> Result<Self, PaymentStatusError> {
        if raw == Self::LEGACY_EXECUTING {
            return Ok(PaymentStatus::Authorised);
        }
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| PaymentStatusError(truncate_for_error(raw)))
    }

    /// The word earlier releases stored for what is now `authorised` (ACSP, UK
    /// `AcceptedSettlementInProcess`).
    pub const LEGACY_EXECUTING: &'static str = "executing";

    /// What the status means, in a sentence.
    pub fn meaning(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "not yet authorised by the user",
            PaymentStatus::Authorised => {
                "authorised by the user and accepted by the bank; not settled yet"
            }
            PaymentStatus::Completed => "settled",
            PaymentStatus::Rejected => "refused by the bank, or by the user at the bank",
            PaymentStatus::Cancelled => {
                "cancelled before execution (by the tenant, the user or the bank), or recalled"
            }
            PaymentStatus::Unknown => "the bank gave no final status within three days",
        }
    }

    /// The vocabulary as a Markdown table: each status, what it means, and the bank statuses
    /// of each standard that lead to it. Generated from the mappings themselves
    /// ([`Iso20022Status::kontor_status`], [`uk_status`]), so the documentation cannot drift.
    pub fn vocabulary() -> String {
        let mut table = String::from(
            "| status | meaning | Berlin Group `transactionStatus` | UK Open Banking `Status` |\n\
             |---|---|---|---|\n",
        );
        for status in Self::ALL {
            let berlin: Vec<String> = Iso20022Status::ALL
                .into_iter()
                .filter(|iso| iso.kontor_status() == status)
                .map(|iso| format!("`{}`", iso.code()))
                .collect();
            let uk: Vec<String> = UK_STATUSES
                .into_iter()
                .filter(|(_, meaning)| *meaning == status)
                .map(|(word, _)| format!("`{word}`"))
                .collect();
            let or_dash = |words: Vec<String>| {
                if words.is_empty() {
                    "—".to_owned()
                } else {
                    words.join(", ")
                }
            };
            table.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                status.as_str(),
                status.meaning(),
                or_dash(berlin),
                or_dash(uk)
            ));
        }
        table
    }

    /// Completed, rejected and cancelled end a payment's normal life: the poller stops.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::Completed | PaymentStatus::Rejected | PaymentStatus::Cancelled
        )
    }

    /// Position on the happy path, for the statuses that have one.
    fn progress(self) -> Option<u8> {
        match self {
            PaymentStatus::Pending => Some(0),
            PaymentStatus::Authorised => Some(1),
            PaymentStatus::Completed => Some(2),
            PaymentStatus::Rejected | PaymentStatus::Cancelled | PaymentStatus::Unknown => None,
        }
    }

    /// The status after the bank reports `next`, or an error if that would be a move back.
    ///
    /// - The same status again is a no-op, final ones included: pollers see it constantly.
    /// - Forward along pending → authorised → completed, skipping steps, since
    ///   banks often report only some of them.
    /// - Any non-final status may become rejected, cancelled or unknown.
    /// - Unknown is left by whatever real status the bank reports next.
    /// - Completed may still become cancelled: banks report CANC after ACSC when a settled
    ///   payment is recalled or reversed, and the tenant must learn the money came back.
    /// - Everything else is refused: authorised → pending, completed → authorised,
    ///   rejected → completed, cancelled → anything. A bank report that is refused here is a
    ///   stale or out-of-order report, to be logged and otherwise ignored; note that PDNG maps
    ///   to pending, so a PDNG after authorisation is refused the same way.
    pub fn apply(self, next: PaymentStatus) -> Result<PaymentStatus, IllegalTransition> {
        use PaymentStatus as S;
        let allowed = match (self, next) {
            (from, to) if from == to => true,
            (S::Unknown, _) => true,
            (S::Pending | S::Authorised, S::Rejected | S::Cancelled | S::Unknown) => true,
            (S::Completed, S::Cancelled) => true,
            (from, to) if !from.is_final() => matches!(
                (from.progress(), to.progress()),
                (Some(from), Some(to)) if to > from
            ),
            _ => false,
        };
        if allowed {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }
}

impl FromStr for PaymentStatus {
    type Err = PaymentStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// UK Open Banking's words by their meaning for the hub: a domestic payment's `Status`
/// (`OBWritePaymentDetails` / `OBWriteDomesticResponse`), and a domestic payment consent's, which
/// is all the hub knows before the payment is submitted (`Consumed`: a payment was submitted under
/// it, and is authorised at least).
pub const UK_STATUSES: [(&str, PaymentStatus); 9] = [
    ("AwaitingAuthorisation", PaymentStatus::Pending),
    ("Pending", PaymentStatus::Pending),
    ("Authorised", PaymentStatus::Authorised),
    ("Consumed", PaymentStatus::Authorised),
    ("AcceptedSettlementInProcess", PaymentStatus::Authorised),
    ("AcceptedWithoutPosting", PaymentStatus::Authorised),
    ("AcceptedSettlementCompleted", PaymentStatus::Completed),
    (
        "AcceptedCreditSettlementCompleted",
        PaymentStatus::Completed,
    ),
    ("Rejected", PaymentStatus::Rejected),
];

/// What a UK Open Banking status means for the hub ([`UK_STATUSES`]); `None` for a word the
/// standard does not have.
pub fn uk_status(verbatim: &str) -> Option<PaymentStatus> {
    UK_STATUSES
        .into_iter()
        .find(|(word, _)| *word == verbatim)
        .map(|(_, status)| status)
}

/// An ISO 20022 `ExternalPaymentTransactionStatus1Code` as Berlin Group banks return it in
/// `transactionStatus`. Stored verbatim beside Kontor's own status, so support can see exactly
/// what the bank said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Iso20022Status {
    /// ACCC: settlement on the creditor's account has been completed.
    AcceptedCreditSettlementCompleted,
    /// ACCP: technical validation and customer profile check succeeded.
    AcceptedCustomerProfile,
    /// ACFC: technical validation and customer profile succeeded and funds were checked.
    AcceptedFundsChecked,
    /// ACSC: settlement on the debtor's account has been completed.
    AcceptedSettlementCompleted,
    /// ACSP: all checks passed; accepted for execution.
    AcceptedSettlementInProcess,
    /// ACTC: authentication and syntactical and semantical validation succeeded.
    AcceptedTechnicalValidation,
    /// ACWC: accepted, but with a change (date, remittance information not sent, …).
    AcceptedWithChange,
    /// ACWP: accepted without being posted to the creditor's account.
    AcceptedWithoutPosting,
    /// RCVD: received by the bank.
    Received,
    /// PDNG: pending; further checks and status updates will follow.
    Pending,
    /// RJCT: rejected.
    Rejected,
    /// CANC: cancelled.
    Cancelled,
    /// ACCR: a cancellation request was accepted.
    AcceptedCancellationRequest,
    /// PART: bulk payments only; some transactions accepted, others not (yet).
    PartiallyAccepted,
    /// PATC: needs several authorisations; some but not all have been given.
    PartiallyAcceptedTechnical,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ISO 20022 payment transaction status code Kontor knows")]
pub struct Iso20022StatusError(pub String);

impl Iso20022Status {
    pub const ALL: [Iso20022Status; 15] = [
        Iso20022Status::AcceptedCreditSettlementCompleted,
        Iso20022Status::AcceptedCustomerProfile,
        Iso20022Status::AcceptedFundsChecked,
        Iso20022Status::AcceptedSettlementCompleted,
        Iso20022Status::AcceptedSettlementInProcess,
        Iso20022Status::AcceptedTechnicalValidation,
        Iso20022Status::AcceptedWithChange,
        Iso20022Status::AcceptedWithoutPosting,
        Iso20022Status::Received,
        Iso20022Status::Pending,
        Iso20022Status::Rejected,
        Iso20022Status::Cancelled,
        Iso20022Status::AcceptedCancellationRequest,
        Iso20022Status::PartiallyAccepted,
        Iso20022Status::PartiallyAcceptedTechnical,
    ];

    /// The four-letter code, exactly as banks send it.
    pub fn code(self) -> &'static str {
        match self {
            Iso20022Status::AcceptedCreditSettlementCompleted => "ACCC",
            Iso20022Status::AcceptedCustomerProfile => "ACCP",
            Iso20022Status::AcceptedFundsChecked => "ACFC",
            Iso20022Status::AcceptedSettlementCompleted => "ACSC",
            Iso20022Status::AcceptedSettlementInProcess => "ACSP",
            Iso20022Status::AcceptedTechnicalValidation => "ACTC",
            Iso20022Status::AcceptedWithChange => "ACWC",
            Iso20022Status::AcceptedWithoutPosting => "ACWP",
            Iso20022Status::Received => "RCVD",
            Iso20022Status::Pending => "PDNG",
            Iso20022Status::Rejected => "RJCT",
            Iso20022Status::Cancelled => "CANC",
            Iso20022Status::AcceptedCancellationRequest => "ACCR",
            Iso20022Status::PartiallyAccepted => "PART",
            Iso20022Status::PartiallyAcceptedTechnical => "PATC",
        }
    }

    /// Parses the code as sent; case is not folded, since the standard's enum is uppercase and
    /// anything else means the bank is sending something other than what we think.
    pub fn parse(code: &str) -> Result<Self, Iso20022StatusError> {
        Self::ALL
            .into_iter()
            .find(|status| status.code() == code)
            .ok_or_else(|| Iso20022StatusError(truncate_for_error(code)))
    }

    /// What the code means for the tenant.
    ///
    /// - Still needs the user (RCVD, PDNG, PATC): pending.
    /// - Authorised and accepted, not yet settled: validated (ACTC, ACCP, ACFC, ACWC), PART
    ///   (whose accepted part has not been settled either), settlement under way (ACSP), or
    ///   accepted by the creditor's bank but not yet posted (ACWP): authorised. Banks differ in
    ///   which of these they report after the user's SCA; for the tenant it is one stage.
    /// - Settled on the debtor's (ACSC) or creditor's (ACCC) side: completed.
    /// - RJCT: rejected. CANC, and ACCR (the bank accepted a cancellation request): cancelled.
    pub fn kontor_status(self) -> PaymentStatus {
        use Iso20022Status as I;
        match self {
            I::Received | I::Pending | I::PartiallyAcceptedTechnical => PaymentStatus::Pending,
            I::AcceptedTechnicalValidation
            | I::AcceptedCustomerProfile
            | I::AcceptedFundsChecked
            | I::AcceptedWithChange
            | I::PartiallyAccepted
            | I::AcceptedSettlementInProcess
            | I::AcceptedWithoutPosting => PaymentStatus::Authorised,
            I::AcceptedSettlementCompleted | I::AcceptedCreditSettlementCompleted => {
                PaymentStatus::Completed
            }
            I::Rejected => PaymentStatus::Rejected,
            I::Cancelled | I::AcceptedCancellationRequest => PaymentStatus::Cancelled,
        }
    }
}

impl FromStr for Iso20022Status {
    type Err = Iso20022StatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Iso20022Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Iso20022Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Iso20022Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus as S;
    use super::*;
    use proptest::prelude::*;

    const Y: bool = true;
    const N: bool = false;

    /// The whole machine: row is the current status, column the reported one, both in
    /// `PaymentStatus::ALL` order (pending, authorised, completed, rejected, cancelled,
    /// unknown).
    const TABLE: [(S, [bool; 6]); 6] = [
        //              pend auth comp rej  canc unkn
        (S::Pending, [Y, Y, Y, Y, Y, Y]),
        (S::Authorised, [N, Y, Y, Y, Y, Y]),
        (S::Completed, [N, N, Y, N, Y, N]),
        (S::Rejected, [N, N, N, Y, N, N]),
        (S::Cancelled, [N, N, N, N, Y, N]),
        (S::Unknown, [Y, Y, Y, Y, Y, Y]),
    ];

    #[test]
    fn every_pair_matches_the_table() {
        assert_eq!(
            TABLE.map(|(from, _)| from),
            S::ALL,
            "one row per status, in order"
        );
        for (from, row) in TABLE {
            for (to, allowed) in S::ALL.into_iter().zip(row) {
                let expected = if allowed {
                    Ok(to)
                } else {
                    Err(IllegalTransition { from, to })
                };
                assert_eq!(from.apply(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_statuses_leave_only_by_the_documented_reversal() {
        for from in S::ALL.into_iter().filter(|s| s.is_final()) {
            for to in S::ALL.into_iter().filter(|&to| to != from) {
                let reversal = from == S::Completed && to == S::Cancelled;
                assert_eq!(from.apply(to).is_ok(), reversal, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_serde_and_parse() {
        for status in S::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), status);
            assert_eq!(S::parse(status.as_str()), Ok(status));
        }
        assert!(S::parse("Completed").is_err());
        assert_eq!(
            S::Completed.apply(S::Authorised).unwrap_err().to_string(),
            "illegal payment transition: completed -> authorised"
        );
        // Rows of earlier releases.
        assert_eq!(S::parse("executing"), Ok(S::Authorised));
    }

    /// The stage right after the user's SCA has one name whichever standard the bank speaks:
    /// Berlin Group's ACTC and ACSP, UK's `AcceptedSettlementInProcess` (what the sandbox's
    /// banks report there) are all `authorised`.
    #[test]
    fn one_vocabulary_across_standards() {
        for code in ["ACTC", "ACSP", "ACWP"] {
            assert_eq!(
                Iso20022Status::parse(code).unwrap().kontor_status(),
                S::Authorised
            );
        }
        assert_eq!(
            uk_status("AcceptedSettlementInProcess"),
            Some(S::Authorised)
        );
        assert_eq!(uk_status("Authorised"), Some(S::Authorised));
        assert_eq!(uk_status("AcceptedSettlementCompleted"), Some(S::Completed));
        assert_eq!(uk_status("ACSC"), None);
        let table = S::vocabulary();
        assert!(
            table.contains("| `authorised` | authorised by the user and accepted by the bank; not settled yet | `ACCP`, `ACFC`, `ACSP`, `ACTC`, `ACWC`, `ACWP`, `PART` | `Authorised`, `Consumed`, `AcceptedSettlementInProcess`, `AcceptedWithoutPosting` |"),
            "{table}"
        );
        assert!(table.contains("| `unknown` |"), "{table}");
        assert!(!table.contains("executing"), "{table}");
    }

    #[test]
    fn iso_codes_parse_and_map() {
        let expected = [
            ("ACCC", S::Completed),
            ("ACCP", S::Authorised),
            ("ACFC", S::Authorised),
            ("ACSC", S::Completed),
            ("ACSP", S::Authorised),
            ("ACTC", S::Authorised),
            ("ACWC", S::Authorised),
            ("ACWP", S::Authorised),
            ("RCVD", S::Pending),
            ("PDNG", S::Pending),
            ("RJCT", S::Rejected),
            ("CANC", S::Cancelled),
            ("ACCR", S::Cancelled),
            ("PART", S::Authorised),
            ("PATC", S::Pending),
        ];
        assert_eq!(expected.len(), Iso20022Status::ALL.len());
        for (code, status) in expected {
            let iso = Iso20022Status::parse(code).unwrap();
            assert_eq!(iso.code(), code);
            assert_eq!(iso.to_string(), code);
            assert_eq!(iso.kontor_status(), status, "{code}");
            let json = serde_json::to_string(&iso).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<Iso20022Status>(&json).unwrap(), iso);
        }
        for bad in [
            "", "accc", "Accc", "ACC", "ACCCC", " ACCC", "ACTV", "PDNG\n",
        ] {
            assert!(Iso20022Status::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_typical_berlin_group_sequence_is_accepted() {
        let mut status = S::Pending;
        for code in ["RCVD", "ACTC", "ACSP", "ACSC", "ACSC", "ACCC"] {
            let next = Iso20022Status::parse(code).unwrap().kontor_status();
            status = status.apply(next).unwrap();
        }
        assert_eq!(status, S::Completed);
        // A late RCVD from a lagging replica does not roll the payment back.
        assert!(
            status
                .apply(Iso20022Status::Received.kontor_status())
                .is_err()
        );
    }

    fn any_status() -> impl Strategy<Value = S> {
        proptest::sample::select(S::ALL.as_slice())
    }

    proptest! {
        /// However reports arrive, once rejected or cancelled a payment stays that way, and a
        /// completed payment can only still become cancelled.
        #[test]
        fn final_statuses_are_sticky(reports in proptest::collection::vec(any_status(), 0..30)) {
            let mut status = S::Pending;
            for next in reports {
                let before = status;
                if let Ok(after) = status.apply(next) {
                    status = after;
                }
                match before {
                    S::Rejected | S::Cancelled => prop_assert_eq!(status, before),
                    S::Completed => prop_assert!(matches!(status, S::Completed | S::Cancelled)),
                    _ => {}
                }
            }
        }

        #[test]
        fn codes_never_panic_and_round_trip(code in "[A-Z]{4}|.{0,8}") {
            if let Ok(iso) = Iso20022Status::parse(&code) {
                prop_assert_eq!(iso.code(), code.as_str());
            }
        }
    }
}
