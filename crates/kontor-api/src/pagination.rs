//! Cursor pagination across cells. A cursor names the cell being read (as ids name it: `de` for
//! cell 1, so cursors issued before there were several cells per region still read, `de-2`
//! from cell 2 on) and the position in it; a list walks the cells in a fixed order, so every
//! record is seen exactly once even though no single database holds them all. Cursors are
//! opaque to clients (base64url JSON).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kontor_domain::CellId;
use kontor_domain::list::{Page, PageKey};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub cell: CellId,
    /// Position within the cell; `None` means "from its start".
    pub after: Option<PageKey>,
}

#[derive(Serialize, Deserialize)]
struct WireCursor {
    r: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<String>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let wire = WireCursor {
            r: self.cell.segment(),
            t: self.after.as_ref().map(|k| k.sort),
            i: self.after.as_ref().map(|k| k.id.clone()),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
    }

    pub fn decode(raw: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::new(ErrorCode::InvalidCursor, "the cursor is not valid");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let wire: WireCursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let cell = CellId::parse_segment(&wire.r).ok_or_else(invalid)?;
        let after = match (wire.t, wire.i) {
            (Some(t), Some(id)) if id.len() <= 64 => Some(PageKey { sort: t, id }),
            (None, None) => None,
            _ => return Err(invalid()),
        };
        Ok(Self { cell, after })
    }
}

/// Reads one page of a list whose records are spread over cells: cells in a fixed order, each
/// read from the cursor's position on, the page filled from as many cells as it takes.
/// `fetch(cell, after, limit)` reads one cell.
pub async fn across_cells<T, F, Fut>(
    cells: &[CellId],
    cursor: Option<Cursor>,
    limit: usize,
    mut fetch: F,
) -> Result<(Vec<T>, Option<String>), ApiError>
where
    F: FnMut(CellId, Option<PageKey>, usize) -> Fut,
    Fut: Future<Output = Result<Page<T>, ApiError>>,
{
    let (start, mut after) = match cursor {
        None => (0, None),
        Some(cursor) => {
            let index = cells
                .iter()
                .position(|c| c == &cursor.cell)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidCursor,
                        "the cursor does not fit this query",
                    )
                })?;
            (index, cursor.after)
        }
    };
    let mut items = Vec::with_capacity(limit);
    let mut next = None;
    for (index, cell) in cells.iter().enumerate().skip(start) {
        let page = fetch(cell.clone(), after.take(), limit - items.len()).await?;
        items.extend(page.items);
        if let Some(key) = page.next {
            next = Some(Cursor {
                cell: cell.clone(),
                after: Some(key),
            });
            break;
        }
        if items.len() == limit {
            next = cells.get(index + 1).map(|c| Cursor {
                cell: c.clone(),
                after: None,
            });
            break;
        }
    }
    Ok((items, next.map(|c| c.encode())))
}

/// The cursor of a list that lives in one cell (an account's transactions, say), named by the
/// home cell of the record it belongs to.
pub fn in_cell(cell: &CellId, cursor: Option<Cursor>) -> Result<Option<PageKey>, ApiError> {
    match cursor {
        None => Ok(None),
        Some(cursor) if &cursor.cell == cell => Ok(cursor.after),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidCursor,
            "the cursor does not fit this query",
        )),
    }
}

/// The `next_cursor` of a single-cell list.
pub fn next_in_cell(cell: &CellId, next: Option<PageKey>) -> Option<String> {
    next.map(|key| {
        Cursor {
            cell: cell.clone(),
            after: Some(key),
        }
        .encode()
    })
}

/// The `next_cursor` of a list merged from several cells: the position after the page's last
/// row, `last` being that row's home cell.
pub fn next_after(last: Option<&CellId>, next: Option<PageKey>) -> Option<String> {
    let cell = last?;
    next_in_cell(cell, next)
}

/// Validates `?limit=`: 1..=MAX_LIMIT, DEFAULT_LIMIT when absent.
pub fn limit(raw: Option<u32>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!("limit must be 1-{MAX_LIMIT}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            cell: CellId::parse("uk-2").unwrap(),
            after: Some(PageKey {
                sort: 42,
                id: "usr_uk_x".into(),
            }),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        let start = Cursor {
            cell: CellId::parse("de-1").unwrap(),
            after: None,
        };
        assert_eq!(Cursor::decode(&start.encode()).unwrap(), start);
        // Cell 1 is written as the region alone, as cursors were before cells had numbers.
        let old = URL_SAFE_NO_PAD.encode(br#"{"r":"de"}"#);
        assert_eq!(start.encode(), old);
        for bad in [r#"{"r":"de-1"}"#, r#"{"r":"de-0"}"#, r#"{"r":"de-x"}"#] {
            let raw = URL_SAFE_NO_PAD.encode(bad.as_bytes());
            assert!(Cursor::decode(&raw).is_err(), "{bad}");
        }
        for bad in ["", "!!!", "e30", &URL_SAFE_NO_PAD.encode(br#"{"r":"UK"}"#)] {
            assert_eq!(
                Cursor::decode(bad).unwrap_err().code(),
                ErrorCode::InvalidCursor
            );
        }
        let half = URL_SAFE_NO_PAD.encode(br#"{"r":"uk","t":1}"#);
        assert!(Cursor::decode(&half).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(1)).unwrap(), 1);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(201)).is_err());
    }
}
