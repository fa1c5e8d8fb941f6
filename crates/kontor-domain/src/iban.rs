//! International Bank Account Numbers (ISO 13616): validated at the boundary so that a typo is
//! caught before it reaches a bank, and kept in the electronic format (no spaces).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IBAN in electronic format: country code, two check digits, then the national BBAN, all
/// uppercase. It has a known country, that country's length, and correct check digits.
///
/// An IBAN identifies a person's account, so it is personal data: `Debug` masks all but the
/// country and the last four characters, and error messages never repeat it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iban(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    #[error(
        "an IBAN may contain only letters, digits and spaces; found {character:?} at position \
         {position}"
    )]
    InvalidCharacter { position: usize, character: char },
    #[error("an IBAN starts with a two-letter country code followed by two check digits")]
    Malformed,
    #[error("{country} is not a country in the SWIFT IBAN registry")]
    UnknownCountry { country: String },
    #[error("an IBAN for {country} has {expected} characters, not {got}")]
    WrongLength {
        country: String,
        expected: usize,
        got: usize,
    },
    #[error("the IBAN check digits do not match; it probably contains a typo")]
    Checksum,
}

/// IBAN lengths by country, from the SWIFT IBAN registry (release 102). Dependent territories
/// that use their parent's IBAN format (Åland as FI, Guadeloupe as FR, Jersey as GB, …) issue
/// IBANs with the parent's code, so they have no entry of their own.
const LENGTHS: &[(&str, u8)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

fn registered_length(country: &str) -> Option<usize> {
    LENGTHS
        .binary_search_by(|(code, _)| code.cmp(&country))
        .ok()
        .and_then(|index| LENGTHS.get(index))
        .map(|(_, length)| usize::from(*length))
}

/// ISO 7064 MOD 97-10 over the IBAN's characters, letters counting as 10 (A) to 35 (Z). The
/// remainder is carried digit by digit, so the 30-plus-digit number is never built.
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    chars.fold(0, |remainder, c| match c {
        b'0'..=b'9' => (remainder * 10 + u32::from(c - b'0')) % 97,
        _ => (remainder * 100 + u32::from(c.saturating_sub(b'A')) + 10) % 97,
    })
}

/// The check computed over the rearranged IBAN (BBAN, then country and check digits).
fn checksum(country: &str, check_digits: &str, bban: &str) -> u32 {
    mod97(
        bban.bytes()
            .chain(country.bytes())
            .chain(check_digits.bytes()),
    )
}

/// Removes spaces and uppercases, refusing anything that is not an ASCII letter or digit.
fn normalise(raw: &str) -> Result<String, IbanError> {
    let mut iban = String::with_capacity(raw.len().min(64));
    for (index, character) in raw.chars().enumerate() {
        match character {
            ' ' => {}
            c if c.is_ascii_alphanumeric() => iban.push(c.to_ascii_uppercase()),
            c => {
                return Err(IbanError::InvalidCharacter {
                    position: index + 1,
                    character: c,
                });
            }
        }
    }
    Ok(iban)
}

/// Splits a normalised IBAN into country, check digits and BBAN, checking everything but the
/// check digits' value.
fn split(iban: &str) -> Result<(&str, &str, &str), IbanError> {
    let (country, rest) = iban.split_at_checked(2).ok_or(IbanError::Malformed)?;
    let (check_digits, bban) = rest.split_at_checked(2).ok_or(IbanError::Malformed)?;
    if !country.bytes().all(|b| b.is_ascii_uppercase())
        || !check_digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(IbanError::Malformed);
    }
    let expected = registered_length(country).ok_or_else(|| IbanError::UnknownCountry {
        country: country.to_owned(),
    })?;
    if iban.len() != expected {
        return Err(IbanError::WrongLength {
            country: country.to_owned(),
            expected,
            got: iban.len(),
        });
    }
    Ok((country, check_digits, bban))
}

impl Iban {
    /// Parses an IBAN in electronic or print format: spaces are removed and letters uppercased
    /// (people copy IBANs in groups of four, and lowercase, from statements). Any other
    /// character, tabs and dashes included, is refused rather than silently dropped.
    ///
    /// The BBAN is only checked to be alphanumeric, not against each country's national
    /// structure: the check digits catch typos, and the bank itself knows its accounts.
    pub fn parse(raw: &str) -> Result<Self, IbanError> {
        let iban = normalise(raw)?;
        let (country, check_digits, bban) = split(&iban)?;
        // 00, 01 and 99 can satisfy the remainder but are never issued (ISO 13616 uses 02–98).
        let issued = ("02"..="98").contains(&check_digits);
        if !issued || checksum(country, check_digits, bban) != 1 {
            return Err(IbanError::Checksum);
        }
        Ok(Self(iban))
    }

    /// Builds an IBAN from a country and a BBAN, computing the check digits: for the sandbox
    /// bank and for tests, which need valid account numbers of their own. Input is normalised
    /// as in [`Iban::parse`]; an `InvalidCharacter` position counts from the country code,
    /// with two check-digit places between it and the BBAN.
    pub fn from_parts(country: &str, bban: &str) -> Result<Self, IbanError> {
        let placeholder = normalise(&format!("{country}00{bban}"))?;
        let (country, _, bban) = split(&placeholder)?;
        let check = 98 - checksum(country, "00", bban);
        Ok(Self(format!("{country}{check:02}{bban}")))
    }

    /// The electronic format, as banks' APIs expect it: `DE89370400440532013000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166 country code the IBAN was issued under: `DE`.
    pub fn country(&self) -> &str {
        self.0.get(..2).unwrap_or_default()
    }

    pub fn check_digits(&self) -> &str {
        self.0.get(2..4).unwrap_or_default()
    }

    /// The national account number (Basic Bank Account Number).
    pub fn bban(&self) -> &str {
        self.0.get(4..).unwrap_or_default()
    }

    /// The print format for people: groups of four separated by single spaces,
    /// `DE89 3704 0044 0532 0130 00`.
    pub fn to_print_format(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + self.0.len() / 4);
        for (index, character) in self.0.chars().enumerate() {
            if index > 0 && index % 4 == 0 {
                out.push(' ');
            }
            out.push(character);
        }
        out
    }
}

impl FromStr for Iban {
    type Err = IbanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self
            .0
            .get(self.0.len().saturating_sub(4)..)
            .unwrap_or_default();
        write!(f, "Iban({}…{tail})", self.country())
    }
}

impl Serialize for Iban {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Iban {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Examples published in the SWIFT IBAN registry and by national banks.
    const VALID: &[&str] = &[
        "DE89370400440532013000",
        "GB29NWBK60161331926819",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "BE68539007547034",
        "AT611904300234573201",
        "CH9300762011623852957",
        "ES9121000418450200051332",
        "IT60X0542811101000000123456",
        "NO9386011117947",
        "MT84MALT011000012345MTLCAST001S",
        "LC55HEMM000100010012001200023015",
        "SC18SSCB11010000000000001497USD",
        "BR1800360305000010009795493C1",
        "PL61109010140000071219812874",
        "IE29AIBK93115212345678",
    ];

    #[test]
    fn registry_table_is_sorted_and_plausible() {
        for pair in LENGTHS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (country, length) in LENGTHS {
            assert!(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()));
            assert!((15..=34).contains(length), "{country}");
        }
        assert_eq!(LENGTHS.len(), 89);
    }

    #[test]
    fn accepts_well_known_ibans() {
        for raw in VALID {
            let iban = Iban::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(iban.as_str(), *raw);
            assert_eq!(iban.to_string(), *raw);
            assert_eq!(Iban::parse(&iban.to_print_format()), Ok(iban.clone()));
            assert_eq!(Iban::parse(&raw.to_ascii_lowercase()), Ok(iban));
        }
    }

    #[test]
    fn exposes_its_parts_and_print_format() {
        let iban = Iban::parse("de89 3704 0044 0532 0130 00").unwrap();
        assert_eq!(iban.as_str(), "DE89370400440532013000");
        assert_eq!(iban.country(), "DE");
        assert_eq!(iban.check_digits(), "89");
        assert_eq!(iban.bban(), "370400440532013000");
        assert_eq!(iban.to_print_format(), "DE89 3704 0044 0532 0130 00");
        let norway = Iban::parse("NO9386011117947").unwrap();
        assert_eq!(norway.to_print_format(), "NO93 8601 1117 947");
    }

    #[test]
    fn distinct_errors_for_each_problem() {
        assert_eq!(
            Iban::parse("DE89-3704-0044-0532-0130-00"),
            Err(IbanError::InvalidCharacter {
                position: 5,
                character: '-'
            })
        );
        assert_eq!(
            Iban::parse("DE89\t370400440532013000"),
            Err(IbanError::InvalidCharacter {
                position: 5,
                character: '\t'
            })
        );
        assert!(matches!(
            Iban::parse("DÉ89"),
            Err(IbanError::InvalidCharacter { position: 2, .. })
        ));
        for malformed in [
            "",
            "D",
            "DE",
            "DE8",
            "1E89370400440532013000",
            "DEX9370400440532013000",
        ] {
            assert_eq!(
                Iban::parse(malformed),
                Err(IbanError::Malformed),
                "{malformed:?}"
            );
        }
        assert_eq!(
            Iban::parse("US12345678901234567890"),
            Err(IbanError::UnknownCountry {
                country: "US".to_owned()
            })
        );
        assert_eq!(
            Iban::parse("DE8937040044053201300"),
            Err(IbanError::WrongLength {
                country: "DE".to_owned(),
                expected: 22,
                got: 21
            })
        );
        assert_eq!(
            Iban::parse("DE88370400440532013000"),
            Err(IbanError::Checksum)
        );
        assert_eq!(
            Iban::parse("GB29NWBK60161331926818"),
            Err(IbanError::Checksum)
        );
    }

    #[test]
    fn check_digits_outside_02_to_98_are_refused_even_when_the_remainder_fits() {
        // DE with check digits 98 has an alias 01 (98 - 97) that also leaves remainder 1.
        let bban = (0..u64::MAX)
            .map(|n| format!("{n:018}"))
            .find(|bban| 98 - checksum("DE", "00", bban) == 98)
            .unwrap();
        assert!(Iban::parse(&format!("DE98{bban}")).is_ok());
        assert_eq!(checksum("DE", "01", &bban), 1);
        assert_eq!(
            Iban::parse(&format!("DE01{bban}")),
            Err(IbanError::Checksum)
        );
    }

    #[test]
    fn from_parts_computes_check_digits() {
        assert_eq!(
            Iban::from_parts("DE", "370400440532013000").map(|i| i.to_string()),
            Ok("DE89370400440532013000".to_owned())
        );
        assert_eq!(
            Iban::from_parts("GB", "NWBK60161331926819").map(|i| i.to_string()),
            Ok("GB29NWBK60161331926819".to_owned())
        );
        assert_eq!(
            Iban::from_parts("gb", "nwbk 6016 1331 9268 19").map(|i| i.to_string()),
            Ok("GB29NWBK60161331926819".to_owned())
        );
        assert!(matches!(
            Iban::from_parts("DE", "1234"),
            Err(IbanError::WrongLength { .. })
        ));
        assert!(matches!(
            Iban::from_parts("ZZ", "1234"),
            Err(IbanError::UnknownCountry { .. })
        ));
        assert!(matches!(
            Iban::from_parts("DE", "37040044053201300!"),
            Err(IbanError::InvalidCharacter { .. })
        ));
    }

    #[test]
    fn debug_masks_the_account_and_errors_do_not_echo_it() {
        let iban = Iban::parse("DE89370400440532013000").unwrap();
        assert_eq!(format!("{iban:?}"), "Iban(DE…3000)");
        let err = Iban::parse("DE88370400440532013000")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("3704"), "{err}");
    }

    #[test]
    fn serialises_as_the_electronic_format() {
        let iban: Iban = serde_json::from_str("\"GB29 NWBK 6016 1331 9268 19\"").unwrap();
        assert_eq!(
            serde_json::to_string(&iban).unwrap(),
            "\"GB29NWBK60161331926819\""
        );
        assert!(serde_json::from_str::<Iban>("\"GB29NWBK60161331926818\"").is_err());
        assert!(serde_json::from_str::<Iban>("12").is_err());
    }

    /// Substituting a digit for a letter (or back) changes how many decimal digits the
    /// character contributes, which shifts everything before it; MOD 97-10 then misses about
    /// one substitution in 97. Same-kind substitutions are always caught (see the proptest).
    #[test]
    fn single_substitutions_are_caught_except_rare_digit_letter_swaps() {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut missed = 0;
        let mut tried = 0;
        for raw in VALID {
            for position in 0..raw.len() {
                for &replacement in ALPHABET {
                    let mut bytes = raw.as_bytes().to_vec();
                    if bytes[position] == replacement {
                        continue;
                    }
                    let same_kind =
                        bytes[position].is_ascii_digit() == replacement.is_ascii_digit();
                    bytes[position] = replacement;
                    let mutated = String::from_utf8(bytes).unwrap();
                    tried += 1;
                    if Iban::parse(&mutated).is_ok() {
                        assert!(!same_kind && position >= 4, "{raw} -> {mutated} accepted");
                        missed += 1;
                    }
                }
            }
        }
        assert!(
            missed * 50 < tried,
            "{missed} of {tried} substitutions accepted"
        );
    }

    /// A random registry country with a random BBAN of the right length.
    fn valid_iban() -> impl Strategy<Value = Iban> {
        proptest::sample::select(LENGTHS).prop_flat_map(|(country, length)| {
            let bban = proptest::collection::vec(
                proptest::sample::select(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".as_slice()),
                usize::from(length) - 4,
            );
            bban.prop_map(move |bban| {
                let bban = String::from_utf8(bban).unwrap();
                Iban::from_parts(country, &bban).unwrap()
            })
        })
    }

    proptest! {
        #[test]
        fn generated_ibans_round_trip(iban in valid_iban()) {
            prop_assert_eq!(Iban::parse(iban.as_str()), Ok(iban.clone()));
            prop_assert_eq!(Iban::parse(&iban.to_print_format()), Ok(iban.clone()));
            prop_assert_eq!(Iban::parse(&iban.as_str().to_ascii_lowercase()), Ok(iban.clone()));
            prop_assert_eq!(format!("{}{}{}", iban.country(), iban.check_digits(), iban.bban()),
                iban.as_str());
            let json = serde_json::to_string(&iban).unwrap();
            prop_assert_eq!(serde_json::from_str::<Iban>(&json).unwrap(), iban);
        }

        #[test]
        fn same_kind_substitutions_are_rejected(
            iban in valid_iban(),
            position in any::<proptest::sample::Index>(),
            offset in 1u8..36,
        ) {
            let mut bytes = iban.as_str().as_bytes().to_vec();
            let at = position.index(bytes.len());
            let original = bytes[at];
            // A shift of 1-9 digits or 1-25 letters: always a different character of the same kind.
            bytes[at] = if original.is_ascii_digit() {
                b'0' + (original - b'0' + 1 + offset % 9) % 10
            } else {
                b'A' + (original - b'A' + 1 + offset % 25) % 26
            };
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(Iban::parse(&mutated).is_err(), "{} accepted", mutated);
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,40}") {
            if let Ok(iban) = Iban::parse(&raw) {
                prop_assert_eq!(mod97(iban.bban().bytes()
                    .chain(iban.country().bytes())
                    .chain(iban.check_digits().bytes())), 1);
            }
        }

        #[test]
        fn plausible_strings_never_panic(raw in "[A-Za-z]{2}[0-9]{2}[A-Za-z0-9 ]{0,34}") {
            let _ = Iban::parse(&raw);
        }
    }
}
