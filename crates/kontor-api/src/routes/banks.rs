//! `GET /v1/banks`: the bank directory.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::openapi::schemas;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct BankResponse {
    #[schema(example = "sonnenbank")]
    pub id: String,
    #[schema(example = "Sonnenbank")]
    pub name: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "DE")]
    pub country: String,
    #[schema(value_type = schemas::StandardWord)]
    pub standard: String,
    pub logo_url: Option<String>,
    /// Whether users may approve in the bank's app instead of on its web pages.
    pub decoupled_sca: bool,
    /// How long a consent at this bank lasts before it must be renewed or reconfirmed.
    #[schema(example = 180)]
    pub max_consent_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BankList {
    pub data: Vec<BankResponse>,
    /// Always null: the directory fits one page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BanksQuery {
    /// Only banks of this country (ISO 3166-1 alpha-2).
    #[param(pattern = "^[A-Za-z]{2}$", example = "DE")]
    pub country: Option<String>,
}

/// List the banks users can connect.
#[utoipa::path(
    get, path = "/v1/banks", tag = "banks", operation_id = "listBanks",
    params(BanksQuery),
    security(("bearer" = ["connections:read"])),
    responses(
        (status = 200, description = "The directory", body = BankList),
        (status = 400, description = "Invalid country", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _auth: Scoped<scoped::ConnectionsRead>,
    ApiQuery(query): ApiQuery<BanksQuery>,
) -> ApiResult<Json<BankList>> {
    if let Some(country) = &query.country
        && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "country is a two-letter ISO 3166 code",
        ));
    }
    let data = state
        .hub()
        .directory()
        .list(query.country.as_deref())
        .into_iter()
        .map(|bank| BankResponse {
            id: bank.profile.id.to_string(),
            name: bank.profile.name.clone(),
            country: bank.profile.country.clone(),
            standard: bank.profile.standard.as_str().to_owned(),
            logo_url: bank.logo_url.clone(),
            decoupled_sca: bank.profile.decoupled_sca,
            max_consent_days: bank.profile.standard.max_consent_days(),
        })
        .collect();
    Ok(Json(BankList {
        data,
        next_cursor: None,
    }))
}
