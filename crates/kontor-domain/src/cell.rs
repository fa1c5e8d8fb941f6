//! Cells: the databases a region's users live in. A region has one or more cells, named
//! `<region>-<n>` (`de-1`, `de-2`, `uk-1`); configuration says which exist. Ids carry the cell
//! where their record was created (their home cell): the region alone for cell 1 (`usr_de_…`,
//! so every id minted before there were several cells per region names `de-1`) and
//! `<region>-<n>` from cell 2 on (`usr_de-2_…`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::region::{Region, truncate_for_error};

/// A cell: its region and its number in the region (1 to [`CellId::MAX_NUMBER`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellId {
    region: Region,
    number: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid cell name {0:?}: expected <region>-<n>, a region code and a number from 1 to 9999 without leading zeros (e.g. de-1)"
)]
pub struct CellIdError(pub String);

impl CellId {
    pub const MAX_NUMBER: u16 = 9999;

    pub fn new(region: Region, number: u16) -> Result<Self, CellIdError> {
        if (1..=Self::MAX_NUMBER).contains(&number) {
            Ok(Self { region, number })
        } else {
            Err(CellIdError(format!("{region}-{number}")))
        }
    }

    /// Cell 1 of a region: the one an id naming only the region lives in.
    pub fn first(region: Region) -> Self {
        Self { region, number: 1 }
    }

    /// Parses a cell's name, `<region>-<n>`.
    pub fn parse(name: &str) -> Result<Self, CellIdError> {
        let error = || CellIdError(truncate_for_error(name));
        let (region, number) = name.split_once('-').ok_or_else(error)?;
        let region = Region::parse(region).map_err(|_| error())?;
        let number = parse_number(number).ok_or_else(error)?;
        Ok(Self { region, number })
    }

    /// Parses the cell segment of an id: `de` (cell 1) or `de-2`. `de-1` is refused, so that
    /// every record has exactly one id.
    pub fn parse_segment(segment: &str) -> Option<Self> {
        match segment.split_once('-') {
            None => Region::parse(segment).ok().map(Self::first),
            Some((region, number)) => {
                let region = Region::parse(region).ok()?;
                let number = parse_number(number).filter(|&n| n >= 2)?;
                Some(Self { region, number })
            }
        }
    }

    /// The cell as an id names it: the region alone for cell 1, else `<region>-<n>`.
    pub fn segment(&self) -> String {
        if self.number == 1 {
            self.region.to_string()
        } else {
            self.to_string()
        }
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn number(&self) -> u16 {
        self.number
    }
}

/// 1 to 9999, decimal digits without a leading zero.
fn parse_number(raw: &str) -> Option<u16> {
    let bytes = raw.as_bytes();
    let well_formed =
        (1..=4).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(u8::is_ascii_digit);
    if well_formed { raw.parse().ok() } else { None }
}

/// What a new record's id is made in: a cell, or a region for its first cell (as an id that
/// names only the region does).
pub trait HomeCell {
    fn home_cell(&self) -> CellId;
}

impl HomeCell for CellId {
    fn home_cell(&self) -> CellId {
        self.clone()
    }
}

impl HomeCell for Region {
    fn home_cell(&self) -> CellId {
        CellId::first(self.clone())
    }
}

impl FromStr for CellId {
    type Err = CellIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CellId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.region, self.number)
    }
}

impl fmt::Debug for CellId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CellId({self})")
    }
}

impl Serialize for CellId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CellId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

crate::words!(
    /// Whether a cell takes new users. `draining` and `closed` take none; both are still served
    /// for the users they hold. `closed` is for a cell that has been moved empty.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum CellState as "cell state" {
        #[default]
        Open => "open",
        Draining => "draining",
        Closed => "closed",
    }
    display serialize
);

impl CellState {
    pub fn takes_new_users(self) -> bool {
        self == Self::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn de() -> Region {
        Region::parse("de").unwrap()
    }

    #[test]
    fn names_parse_and_print() {
        let cell = CellId::parse("de-2").unwrap();
        assert_eq!(cell.region(), &de());
        assert_eq!(cell.number(), 2);
        assert_eq!(cell.to_string(), "de-2");
        assert_eq!(cell.segment(), "de-2");
        assert_eq!(CellId::parse("eu1-9999").unwrap().number(), 9999);
        let first = CellId::parse("de-1").unwrap();
        assert_eq!(first, CellId::first(de()));
        assert_eq!(first.segment(), "de");
    }

    #[test]
    fn malformed_names_are_refused() {
        for name in [
            "",
            "de",
            "de-",
            "de-0",
            "de-01",
            "de-x",
            "de-10000",
            "de-99999999999",
            "DE-1",
            "de_1",
            "-1",
            "de-1-2",
            "de-+1",
            "de- 1",
        ] {
            assert!(CellId::parse(name).is_err(), "{name:?} should be refused");
        }
    }

    #[test]
    fn segments_name_cell_one_by_the_region_alone() {
        assert_eq!(CellId::parse_segment("de"), Some(CellId::first(de())));
        assert_eq!(
            CellId::parse_segment("de-2"),
            Some(CellId::new(de(), 2).unwrap())
        );
        for segment in [
            "de-1",
            "de-0",
            "de-x",
            "de-99999999999",
            "de-",
            "d",
            "de-02",
        ] {
            assert_eq!(CellId::parse_segment(segment), None, "{segment:?}");
        }
    }

    #[test]
    fn numbers_outside_the_range_are_refused() {
        assert!(CellId::new(de(), 0).is_err());
        assert!(CellId::new(de(), 10_000).is_err());
        assert!(CellId::new(de(), 1).is_ok());
    }

    #[test]
    fn states_parse() {
        assert_eq!(CellState::parse("draining"), Some(CellState::Draining));
        assert!("paused".parse::<CellState>().is_err());
        assert_eq!(CellState::default(), CellState::Open);
        assert!(CellState::Open.takes_new_users());
        assert!(!CellState::Draining.takes_new_users());
        assert!(!CellState::Closed.takes_new_users());
    }

    proptest! {
        #[test]
        fn names_and_segments_round_trip(region in "[a-z][a-z0-9]{1,9}", number in 1u16..=9999) {
            let cell = CellId::new(Region::parse(&region).unwrap(), number).unwrap();
            prop_assert_eq!(CellId::parse(&cell.to_string()), Ok(cell.clone()));
            prop_assert_eq!(CellId::parse_segment(&cell.segment()), Some(cell.clone()));
            let json = serde_json::to_string(&cell).unwrap();
            prop_assert_eq!(serde_json::from_str::<CellId>(&json).unwrap(), cell);
        }

        #[test]
        fn arbitrary_names_never_panic(raw in ".{0,30}") {
            let _ = CellId::parse(&raw);
            let _ = CellId::parse_segment(&raw);
        }
    }
}
