//! Typed extractors for what most handlers take: the `{id}` in the path as its id type, and a
//! list's page (`limit`, `cursor`) beside the list's own query parameters. Each malformed input
//! is refused once, here, with the API's stable code: `invalid_id`, `invalid_query` or
//! `invalid_cursor` (all 400), before the handler runs.

use std::fmt::Display;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::bounded;
use crate::error::{ApiError, ErrorCode};
use crate::pagination::{self, Cursor};

/// Parses an id a client sent (in the path, the query or a body): `invalid_id` when it is not
/// one of type `T`, with the reason (wrong prefix, malformed).
pub fn parse_id<T>(raw: &str) -> Result<T, ApiError>
where
    T: FromStr,
    T::Err: Display,
{
    T::from_str(raw).map_err(|err| ApiError::new(ErrorCode::InvalidId, err.to_string()))
}

/// The single `{id}` path segment as the id type `T` (`PathId<UserId>`).
#[derive(Debug)]
pub struct PathId<T>(pub T);

impl<S, T> FromRequestParts<S> for PathId<T>
where
    S: Send + Sync,
    T: FromStr,
    T::Err: Display,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::new(ErrorCode::InvalidId, "the id in the path is malformed"))?;
        parse_id(&raw).map(PathId)
    }
}

/// Which page of a list the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=[`pagination::MAX_LIMIT`], [`pagination::DEFAULT_LIMIT`] when not given.
    pub limit: usize,
    /// Where to go on from: the `next_cursor` of the previous page, decoded.
    pub cursor: Option<Cursor>,
}

/// The page parameters every list takes, as the API document shows them (list with
/// `params(TheListsQuery, PageParams)`); [`Listing`] reads them.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query for the document; Listing parses it"
)]
pub struct PageParams {
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A list's query string: the page, and the list's own parameters `T` parsed strictly (a
/// parameter neither declares is refused, as with [`super::ApiQuery`]).
#[derive(Debug)]
pub struct Listing<T> {
    pub page: PageRequest,
    pub query: T,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Listing<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        listing(parts.uri.query().unwrap_or_default())
    }
}

fn invalid_query(message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        bounded(&format!("invalid query: {message}")),
    )
}

fn listing<T: DeserializeOwned>(raw: &str) -> Result<Listing<T>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|err| invalid_query(&err.to_string()))?;
    let (mut limit, mut cursor) = (None, None);
    let mut rest = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "limit" => &mut limit,
            "cursor" => &mut cursor,
            _ => {
                rest.push((name, value));
                continue;
            }
        };
        if slot.replace(value).is_some() {
            return Err(invalid_query(&format!("duplicate field `{name}`")));
        }
    }
    let limit = limit
        .map(|raw| {
            raw.parse::<u32>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!("limit must be 1-{}", pagination::MAX_LIMIT),
                )
            })
        })
        .transpose()?;
    let page = PageRequest {
        limit: pagination::limit(limit)?,
        cursor: cursor.as_deref().map(Cursor::decode).transpose()?,
    };
    let rest = serde_urlencoded::to_string(&rest).map_err(|err| invalid_query(&err.to_string()))?;
    let query = serde_urlencoded::from_str(&rest).map_err(|err| invalid_query(&err.to_string()))?;
    Ok(Listing { page, query })
}

#[cfg(test)]
mod tests {
    use kontor_domain::{Region, UserId};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        status: Option<String>,
    }

    fn code_of(raw: &str) -> ErrorCode {
        listing::<Filter>(raw).unwrap_err().code()
    }

    #[test]
    fn a_listing_splits_the_page_from_the_lists_own_parameters() {
        let start = Cursor {
            cell: kontor_domain::CellId::first(Region::parse("uk").unwrap()),
            after: None,
        };
        let raw = format!("status=booked&limit=7&cursor={}", start.encode());
        let listed = listing::<Filter>(&raw).unwrap();
        assert_eq!(listed.page.limit, 7);
        assert_eq!(listed.page.cursor, Some(start));
        assert_eq!(listed.query.status.as_deref(), Some("booked"));

        let bare = listing::<Filter>("").unwrap();
        assert_eq!(bare.page.limit, pagination::DEFAULT_LIMIT);
        assert_eq!(bare.page.cursor, None);
        assert_eq!(bare.query, Filter { status: None });
    }

    #[test]
    fn a_bad_page_or_parameter_is_refused_with_its_code() {
        for bad in [
            "limit=0",
            "limit=201",
            "limit=x",
            "limit=",
            "limit=1&limit=2",
        ] {
            assert_eq!(code_of(bad), ErrorCode::InvalidQuery, "{bad}");
        }
        assert_eq!(code_of("colour=red"), ErrorCode::InvalidQuery);
        assert_eq!(code_of("status=a&status=b"), ErrorCode::InvalidQuery);
        for bad in ["cursor=", "cursor=!!!", "cursor=e30"] {
            assert_eq!(code_of(bad), ErrorCode::InvalidCursor, "{bad}");
        }
    }

    #[test]
    fn ids_parse_to_their_type_or_are_invalid_id() {
        let id = UserId::generate(&Region::parse("uk").unwrap());
        assert_eq!(parse_id::<UserId>(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "usr_uk_",
            "acc_uk_00000000000000000000000000",
            "usr_UK_x",
        ] {
            let err = parse_id::<UserId>(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidId, "{bad}");
        }
    }
}
