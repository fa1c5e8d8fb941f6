//! Currencies: the ISO 4217 alphabetic codes Kontor accepts for amounts, each with the number of
//! minor units that fixes how many decimal places an amount in it may carry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::region::truncate_for_error;

/// An ISO 4217 currency Kontor accepts. It is a reference into a static table, so it is `Copy`
/// and a `Currency` can only exist for a code in that table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(&'static Entry);

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Entry {
    code: &'static str,
    minor_units: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("{0:?} is not a currency code: expected three uppercase letters such as \"EUR\"")]
    Malformed(String),
    #[error("{0:?} is not an ISO 4217 currency that Kontor accepts")]
    Unknown(String),
}

const fn entry(code: &'static str, minor_units: u8) -> Entry {
    Entry { code, minor_units }
}

/// ISO 4217 list one as published on 2026-01-01, sorted by code so lookups can binary-search.
///
/// Left out on purpose, because an amount in them cannot be paid from or held in a bank account:
/// - entries without minor units ("N.A."): precious metals (XAU, XAG, XPD, XPT), bond-market and
///   accounting units (XBA–XBD, XDR, XSU, XUA), and the testing and no-currency codes XTS, XXX;
/// - fund codes, which exist for settlement and indexation, not payments: BOV, CHE, CHW, COU,
///   MXV, USN, UYI, and the Arab Monetary Fund's XAD.
///
/// Kept although ISO flags them as special: CLF (a fund code) and UYW, the only units with four
/// minor units. Chilean and Uruguayan loans, rents and accounts are denominated in them, so
/// statements carry them, and they keep the four-decimal path of [`crate::money`] exercised.
///
/// Kept although withdrawn: BGN, replaced by the euro on 2026-01-01. Bulgaria is a PSD2 market,
/// and the transaction history banks return for the first years after the switch is still in lev.
const TABLE: &[Entry] = &[
    entry("AED", 2),
    entry("AFN", 2),
    entry("ALL", 2),
    entry("AMD", 2),
    entry("AOA", 2),
    entry("ARS", 2),
    entry("AUD", 2),
    entry("AWG", 2),
    entry("AZN", 2),
    entry("BAM", 2),
    entry("BBD", 2),
    entry("BDT", 2),
    entry("BGN", 2),
    entry("BHD", 3),
    entry("BIF", 0),
    entry("BMD", 2),
    entry("BND", 2),
    entry("BOB", 2),
    entry("BRL", 2),
    entry("BSD", 2),
    entry("BTN", 2),
    entry("BWP", 2),
    entry("BYN", 2),
    entry("BZD", 2),
    entry("CAD", 2),
    entry("CDF", 2),
    entry("CHF", 2),
    entry("CLF", 4),
    entry("CLP", 0),
    entry("CNY", 2),
    entry("COP", 2),
    entry("CRC", 2),
    entry("CUP", 2),
    entry("CVE", 2),
    entry("CZK", 2),
    entry("DJF", 0),
    entry("DKK", 2),
    entry("DOP", 2),
    entry("DZD", 2),
    entry("EGP", 2),
    entry("ERN", 2),
    entry("ETB", 2),
    entry("EUR", 2),
    entry("FJD", 2),
    entry("FKP", 2),
    entry("GBP", 2),
    entry("GEL", 2),
    entry("GHS", 2),
    entry("GIP", 2),
    entry("GMD", 2),
    entry("GNF", 0),
    entry("GTQ", 2),
    entry("GYD", 2),
    entry("HKD", 2),
    entry("HNL", 2),
    entry("HTG", 2),
    entry("HUF", 2),
    entry("IDR", 2),
    entry("ILS", 2),
    entry("INR", 2),
    entry("IQD", 3),
    entry("IRR", 2),
    entry("ISK", 0),
    entry("JMD", 2),
    entry("JOD", 3),
    entry("JPY", 0),
    entry("KES", 2),
    entry("KGS", 2),
    entry("KHR", 2),
    entry("KMF", 0),
    entry("KPW", 2),
    entry("KRW", 0),
    entry("KWD", 3),
    entry("KYD", 2),
    entry("KZT", 2),
    entry("LAK", 2),
    entry("LBP", 2),
    entry("LKR", 2),
    entry("LRD", 2),
    entry("LSL", 2),
    entry("LYD", 3),
    entry("MAD", 2),
    entry("MDL", 2),
    entry("MGA", 2),
    entry("MKD", 2),
    entry("MMK", 2),
    entry("MNT", 2),
    entry("MOP", 2),
    entry("MRU", 2),
    entry("MUR", 2),
    entry("MVR", 2),
    entry("MWK", 2),
    entry("MXN", 2),
    entry("MYR", 2),
    entry("MZN", 2),
    entry("NAD", 2),
    entry("NGN", 2),
    entry("NIO", 2),
    entry("NOK", 2),
    entry("NPR", 2),
    entry("NZD", 2),
    entry("OMR", 3),
    entry("PAB", 2),
    entry("PEN", 2),
    entry("PGK", 2),
    entry("PHP", 2),
    entry("PKR", 2),
    entry("PLN", 2),
    entry("PYG", 0),
    entry("QAR", 2),
    entry("RON", 2),
    entry("RSD", 2),
    entry("RUB", 2),
    entry("RWF", 0),
    entry("SAR", 2),
    entry("SBD", 2),
    entry("SCR", 2),
    entry("SDG", 2),
    entry("SEK", 2),
    entry("SGD", 2),
    entry("SHP", 2),
    entry("SLE", 2),
    entry("SOS", 2),
    entry("SRD", 2),
    entry("SSP", 2),
    entry("STN", 2),
    entry("SVC", 2),
    entry("SYP", 2),
    entry("SZL", 2),
    entry("THB", 2),
    entry("TJS", 2),
    entry("TMT", 2),
    entry("TND", 3),
    entry("TOP", 2),
    entry("TRY", 2),
    entry("TTD", 2),
    entry("TWD", 2),
    entry("TZS", 2),
    entry("UAH", 2),
    entry("UGX", 0),
    entry("USD", 2),
    entry("UYU", 2),
    entry("UYW", 4),
    entry("UZS", 2),
    entry("VED", 2),
    entry("VES", 2),
    entry("VND", 0),
    entry("VUV", 0),
    entry("WST", 2),
    entry("XAF", 0),
    entry("XCD", 2),
    entry("XCG", 2),
    entry("XOF", 0),
    entry("XPF", 0),
    entry("YER", 2),
    entry("ZAR", 2),
    entry("ZMW", 2),
    entry("ZWG", 2),
];

impl Currency {
    pub const EUR: Currency = Currency(&entry("EUR", 2));
    pub const GBP: Currency = Currency(&entry("GBP", 2));
    pub const USD: Currency = Currency(&entry("USD", 2));
    pub const CHF: Currency = Currency(&entry("CHF", 2));

    /// The highest number of minor units any accepted currency has (CLF, UYW).
    pub const MAX_MINOR_UNITS: u8 = 4;

    /// Parses an ISO 4217 alphabetic code. Only the uppercase form is accepted, as in both
    /// open banking standards; lowercase input is a client bug worth surfacing, not guessing at.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let well_formed = code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase());
        if !well_formed {
            return Err(CurrencyError::Malformed(truncate_for_error(code)));
        }
        TABLE
            .binary_search_by(|entry| entry.code.cmp(code))
            .ok()
            .and_then(|index| TABLE.get(index))
            .map(Currency)
            .ok_or_else(|| CurrencyError::Unknown(code.to_owned()))
    }

    /// Every accepted currency, in code order.
    pub fn all() -> impl ExactSizeIterator<Item = Currency> {
        TABLE.iter().map(Currency)
    }

    pub fn code(self) -> &'static str {
        self.0.code
    }

    /// The ISO 4217 exponent: how many decimal places an amount in this currency has
    /// (2 for EUR, 0 for JPY, 3 for BHD, 4 for CLF).
    pub fn minor_units(self) -> u8 {
        self.0.minor_units
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0].code,
                pair[1].code
            );
        }
        for entry in TABLE {
            assert!(entry.code.len() == 3 && entry.code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(matches!(entry.minor_units, 0 | 2 | 3 | 4), "{}", entry.code);
        }
        assert_eq!(Currency::all().len(), 158);
    }

    #[test]
    fn exponents_match_iso_4217() {
        for (code, units) in [
            ("EUR", 2),
            ("GBP", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("BHD", 3),
            ("KWD", 3),
            ("TND", 3),
            ("CLF", 4),
            ("UYW", 4),
        ] {
            assert_eq!(
                Currency::parse(code).unwrap().minor_units(),
                units,
                "{code}"
            );
        }
        assert_eq!(
            TABLE
                .iter()
                .filter(|e| e.minor_units == 4)
                .map(|e| e.code)
                .collect::<Vec<_>>(),
            ["CLF", "UYW"]
        );
    }

    #[test]
    fn constants_agree_with_the_table() {
        for constant in [Currency::EUR, Currency::GBP, Currency::USD, Currency::CHF] {
            assert_eq!(Currency::parse(constant.code()), Ok(constant));
        }
        assert_eq!(
            Currency::all().map(Currency::minor_units).max(),
            Some(Currency::MAX_MINOR_UNITS)
        );
    }

    #[test]
    fn rejects_malformed_codes() {
        for code in [
            "", "EU", "EURO", "eur", "Eur", "EU1", " EUR", "EUR ", "ÉUR", "€",
        ] {
            assert!(
                matches!(Currency::parse(code), Err(CurrencyError::Malformed(_))),
                "{code:?}"
            );
        }
    }

    #[test]
    fn rejects_unknown_withdrawn_fund_and_metal_codes() {
        for code in [
            "ABC", "BTC", "DEM", "HRK", "ANG", "SLL", "ZWL", "CUC", "XAU", "XAG", "XDR", "XTS",
            "XXX", "CHE", "USN", "UYI", "XAD", "BOV",
        ] {
            assert_eq!(
                Currency::parse(code),
                Err(CurrencyError::Unknown(code.to_owned())),
                "{code}"
            );
        }
    }

    #[test]
    fn serialises_as_the_code() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"JPY\"").unwrap().code(),
            "JPY"
        );
        assert!(serde_json::from_str::<Currency>("\"jpy\"").is_err());
        assert!(serde_json::from_str::<Currency>("978").is_err());
        assert_eq!(format!("{:?}", Currency::GBP), "Currency(GBP)");
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::all().collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn every_currency_round_trips(currency in any_currency()) {
            prop_assert_eq!(Currency::parse(currency.code()), Ok(currency));
            prop_assert_eq!(currency.to_string(), currency.code());
            let json = serde_json::to_string(&currency).unwrap();
            prop_assert_eq!(serde_json::from_str::<Currency>(&json).unwrap(), currency);
        }

        #[test]
        fn lowercase_is_never_accepted(currency in any_currency()) {
            let lower = currency.code().to_ascii_lowercase();
            prop_assert!(matches!(Currency::parse(&lower), Err(CurrencyError::Malformed(_))));
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,12}") {
            if let Ok(currency) = Currency::parse(&raw) {
                prop_assert_eq!(currency.code(), raw.as_str());
            }
        }
    }
}
