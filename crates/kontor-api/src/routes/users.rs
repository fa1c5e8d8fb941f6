//! `/v1/users`: a tenant's end users. A user is created in a region and lives in that region's
//! cell; reads and erasure route by the region inside the id.

use axum::Json;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_domain::user::{ExternalId, User};
use kontor_domain::{CellId, Region, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, Listing, PageParams, PathId};
use crate::openapi::schemas;
use crate::pagination;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Your own reference for the user, unique per region among your users. Treated as personal
    /// data: never logged.
    #[schema(
        example = "customer-4711",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub external_id: String,
    /// The user's home region; all their data stays in it. Fixed for the user's lifetime.
    #[schema(value_type = schemas::RegionCode, example = "uk")]
    pub region: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    #[schema(value_type = schemas::UserIdString)]
    pub id: String,
    pub external_id: String,
    #[schema(value_type = schemas::RegionCode, example = "uk")]
    pub region: String,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-26T18:54:59.123456Z")]
    pub created_at: String,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            region: user.region().to_string(),
            id: user.id.to_string(),
            external_id: user.external_id.as_str().to_owned(),
            created_at: user.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserResponse>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Only the user(s) with this reference (one per region at most).
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub external_id: Option<String>,
    /// Only users of this region.
    #[param(value_type = Option<schemas::RegionCode>)]
    pub region: Option<String>,
}

/// Create a user in a region.
#[utoipa::path(
    post, path = "/v1/users", tag = "users", operation_id = "createUser",
    request_body = CreateUserRequest,
    security(("bearer" = ["users:write"])),
    responses(
        (status = 201, description = "Created", body = UserResponse),
        (status = 400, description = "Invalid body or region", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks users:write", body = ErrorEnvelope),
        (status = 409, description = "external_id already used in this region", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Body is not JSON", body = ErrorEnvelope),
        (status = 503, description = "No cell of the region takes new users now (no_open_cell), or a database is unavailable", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Scoped<scoped::UsersWrite>,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<Response> {
    let external_id = ExternalId::parse(&body.external_id)
        .map_err(|err| ApiError::new(ErrorCode::InvalidExternalId, err.to_string()))?;
    let region = state.served_region(&body.region)?;
    let user = state
        .hub()
        .create_user(&auth.tenant, external_id, &region)
        .await?;
    tracing::info!(user.id = %user.id, "user created");
    let location = HeaderValue::from_str(&format!("/v1/users/{}", user.id)).ok();
    let mut response = (StatusCode::CREATED, Json(UserResponse::from(user))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// Read a user.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users", operation_id = "getUser",
    params(("id" = schemas::UserIdString, Path, description = "A user id, e.g. usr_uk_…")),
    security(("bearer" = ["users:read"])),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks users:read", body = ErrorEnvelope),
        (status = 404, description = "No such user for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Scoped<scoped::UsersRead>,
    PathId(id): PathId<UserId>,
) -> ApiResult<Json<UserResponse>> {
    let user = state.hub().user(&auth.tenant, &id).await?;
    Ok(Json(user.into()))
}

/// Erase a user and everything held about them (GDPR Art. 17).
///
/// Their data, events and idempotency records are deleted before the answer; their consents are revoked at the banks
/// afterwards (`user.erasure_completed` tells when).
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "users", operation_id = "deleteUser",
    params(("id" = schemas::UserIdString, Path, description = "A user id, e.g. usr_uk_…")),
    security(("bearer" = ["users:write"])),
    responses(
        (status = 204, description = "Erased"),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks users:write", body = ErrorEnvelope),
        (status = 404, description = "No such user for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Scoped<scoped::UsersWrite>,
    PathId(id): PathId<UserId>,
) -> ApiResult<StatusCode> {
    state.hub().erase_user(&auth.tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List users, optionally by external_id or region, in pages.
#[utoipa::path(
    get, path = "/v1/users", tag = "users", operation_id = "listUsers",
    params(ListUsersQuery, PageParams),
    security(("bearer" = ["users:read"])),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "Invalid query, region or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks users:read", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Scoped<scoped::UsersRead>,
    Listing { page, query }: Listing<ListUsersQuery>,
) -> ApiResult<Json<UserList>> {
    let regions: Vec<Region> = match &query.region {
        Some(raw) => vec![state.served_region(raw)?],
        None => state.hub().regions().cloned().collect(),
    };
    let cells: Vec<CellId> = regions
        .iter()
        .flat_map(|region| state.hub().region_cells(region))
        .collect();

    if let Some(raw) = &query.external_id {
        if page.cursor.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "cursor cannot be combined with external_id",
            ));
        }
        let external_id = ExternalId::parse(raw)
            .map_err(|err| ApiError::new(ErrorCode::InvalidExternalId, err.to_string()))?;
        let mut data = Vec::new();
        for region in &regions {
            let found = state
                .hub()
                .user_by_external_id(&auth.tenant, region, &external_id)
                .await?;
            if let Some(user) = found {
                data.push(user.into());
            }
        }
        return Ok(Json(UserList {
            data,
            next_cursor: None,
        }));
    }

    let tenant = &auth.tenant;
    let (users, next_cursor) =
        pagination::across_cells(&cells, page.cursor, page.limit, |cell, after, n| {
            let hub = state.hub();
            async move { Ok(hub.list_users(tenant, &cell, after.as_ref(), n).await?) }
        })
        .await?;
    let data = users.into_iter().map(UserResponse::from).collect();
    Ok(Json(UserList { data, next_cursor }))
}
