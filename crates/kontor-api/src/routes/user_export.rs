//! `GET /v1/users/{id}/export`: everything the hub holds about one user, streamed as NDJSON. The
//! first line names the export, the last one counts what came before it, so a client can tell a
//! complete export from a cut one; a failure after the first byte ends the stream with an `error`
//! line and no summary.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use kontor_domain::UserId;
use kontor_domain::time::Timestamp;
use kontor_service::{ExportItem, ServiceResult, UserExport};
use serde::Serialize;
use utoipa::ToSchema;

use super::accounts::{AccountResponse, BalanceResponse, TransactionResponse};
use super::connections::ConnectionResponse;
use super::events::EventResponse;
use super::payments::PaymentResponse;
use super::users::UserResponse;
use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorEnvelope};
use crate::extract::PathId;
use crate::openapi::schemas;
use crate::request_id;
use crate::state::AppState;

/// The media type of the export: one JSON object per line.
pub const NDJSON: &str = "application/x-ndjson";

/// The name of the export format in its header line.
pub const FORMAT: &str = "kontor.user_export";

/// One line of an export: `type` says what `data` holds. The lines come in this order: `export`,
/// `user`, every `connection`, every `account` each followed by its `balance` lines, every
/// `transaction` (account by account, newest first), every `payment`, every `event` (oldest
/// first), and last `summary` — or, when the export failed half-way, `error` instead.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ExportLine {
    Export(ExportHeader),
    User(UserResponse),
    /// Consent metadata; never the bank session, tokens or the connect link.
    Connection(ConnectionResponse),
    Account(AccountResponse),
    Balance(ExportBalance),
    Transaction(TransactionResponse),
    /// With its status history; `authorize_url` is always null here (it is a capability to
    /// authorise the payment, not data about the user).
    Payment(PaymentResponse),
    Event(EventResponse),
    Summary(ExportSummary),
    Error(ErrorBody),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportHeader {
    #[schema(example = "kontor.user_export")]
    pub format: &'static str,
    /// Changes when a line changes incompatibly.
    #[schema(example = 1)]
    pub version: u32,
    #[schema(value_type = schemas::UserIdString)]
    pub user_id: String,
    /// When the export started (RFC 3339, UTC).
    pub generated_at: String,
}

/// A balance of one account.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportBalance {
    #[schema(value_type = schemas::AccountIdString)]
    pub account_id: String,
    #[serde(flatten)]
    pub balance: BalanceResponse,
}

/// How many lines of each type came before the summary.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct ExportCounts {
    pub export: u64,
    pub user: u64,
    pub connection: u64,
    pub account: u64,
    pub balance: u64,
    pub transaction: u64,
    pub payment: u64,
    pub event: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportSummary {
    /// Always true: a summary is only written when every record was.
    pub complete: bool,
    /// Lines before this one.
    pub lines: u64,
    pub counts: ExportCounts,
}

impl ExportCounts {
    fn count(&mut self, line: &ExportLine) {
        let slot = match line {
            ExportLine::Export(_) => &mut self.export,
            ExportLine::User(_) => &mut self.user,
            ExportLine::Connection(_) => &mut self.connection,
            ExportLine::Account(_) => &mut self.account,
            ExportLine::Balance(_) => &mut self.balance,
            ExportLine::Transaction(_) => &mut self.transaction,
            ExportLine::Payment(_) => &mut self.payment,
            ExportLine::Event(_) => &mut self.event,
            ExportLine::Summary(_) | ExportLine::Error(_) => return,
        };
        *slot += 1;
    }

    fn total(&self) -> u64 {
        self.export
            + self.user
            + self.connection
            + self.account
            + self.balance
            + self.transaction
            + self.payment
            + self.event
    }
}

impl From<ExportItem> for ExportLine {
    fn from(item: ExportItem) -> Self {
        match item {
            ExportItem::Connection {
                connection,
                account_ids,
            } => ExportLine::Connection(ConnectionResponse::from_connection(
                connection,
                account_ids.iter().map(ToString::to_string).collect(),
                None,
            )),
            ExportItem::Account(view) => ExportLine::Account(view.into()),
            ExportItem::Balance(row) => ExportLine::Balance(ExportBalance {
                account_id: row.account_id.to_string(),
                balance: row.into(),
            }),
            ExportItem::Transaction(view) => ExportLine::Transaction(view.into()),
            ExportItem::Payment(view) => ExportLine::Payment(view.into()),
            ExportItem::Event(event) => ExportLine::Event(event.into()),
        }
    }
}

/// Appends `line` and its newline to `out`, counting it.
fn write_line(out: &mut Vec<u8>, counts: &mut ExportCounts, line: &ExportLine) -> ApiResult<()> {
    serde_json::to_writer(&mut *out, line).map_err(|err| ApiError::internal(&err))?;
    out.push(b'\n');
    counts.count(line);
    Ok(())
}

/// What is still to stream after the head.
enum Tail {
    Records {
        records: BoxStream<'static, ServiceResult<Vec<ExportItem>>>,
        counts: ExportCounts,
        user: UserId,
        request_id: String,
    },
    Ended,
}

impl Tail {
    /// The next chunk of the body and what follows it.
    async fn next(self) -> Option<(Result<Bytes, std::convert::Infallible>, Tail)> {
        let Tail::Records {
            mut records,
            mut counts,
            user,
            request_id,
        } = self
        else {
            return None;
        };
        let mut out = Vec::new();
        let written = match records.next().await {
            Some(Ok(batch)) => batch
                .into_iter()
                .try_for_each(|item| write_line(&mut out, &mut counts, &ExportLine::from(item))),
            Some(Err(err)) => Err(ApiError::from(err)),
            None => {
                let summary = ExportLine::Summary(ExportSummary {
                    complete: true,
                    lines: counts.total(),
                    counts: counts.clone(),
                });
                let done = write_line(&mut out, &mut counts, &summary);
                if done.is_ok() {
                    tracing::info!(user.id = %user, lines = counts.total(), "user exported");
                    return Some((Ok(Bytes::from(out)), Tail::Ended));
                }
                done
            }
        };
        match written {
            Ok(()) => Some((
                Ok(Bytes::from(out)),
                Tail::Records {
                    records,
                    counts,
                    user,
                    request_id,
                },
            )),
            Err(err) => {
                tracing::warn!(user.id = %user, code = err.code().as_str(), "user export cut short");
                let line = ExportLine::Error(ErrorBody {
                    code: err.code(),
                    message: err.message().to_owned(),
                    request_id,
                });
                // Nothing more to do if even the error line cannot be written: the missing
                // summary tells the client.
                let _ = write_line(&mut out, &mut counts, &line);
                Some((Ok(Bytes::from(out)), Tail::Ended))
            }
        }
    }
}

/// Export everything held about a user, as NDJSON (GDPR Art. 15 and 20).
///
/// One JSON object per line, each `{"type": …, "data": …}` (see `ExportLine`): a header, the
/// user (with `external_id`), their connections (consent metadata, no secrets), accounts with
/// balances, every transaction, payments with their history, and the events about them; last a
/// `summary` with the count of each type. A stream without its `summary` line is incomplete (it
/// ends with an `error` line when the hub could tell). Streamed in batches, so it suits any
/// history length.
#[utoipa::path(
    get, path = "/v1/users/{id}/export", tag = "users", operation_id = "exportUser",
    params(("id" = schemas::UserIdString, Path, description = "A user id, e.g. usr_uk_…")),
    security(("bearer" = ["users:read"])),
    responses(
        (status = 200, description = "The export, one `ExportLine` per line", content_type = "application/x-ndjson", body = ExportLine),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks users:read", body = ErrorEnvelope),
        (status = 404, description = "No such user for this tenant (or erased)", body = ErrorEnvelope),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    auth: Scoped<scoped::UsersRead>,
    PathId(id): PathId<UserId>,
) -> ApiResult<Response> {
    let UserExport { user, records } = state.hub().export_user(&auth.tenant, &id).await?;
    let mut counts = ExportCounts::default();
    let mut head = Vec::new();
    let header = ExportLine::Export(ExportHeader {
        format: FORMAT,
        version: 1,
        user_id: id.to_string(),
        generated_at: Timestamp::now().to_rfc3339(),
    });
    write_line(&mut head, &mut counts, &header)?;
    write_line(&mut head, &mut counts, &ExportLine::User(user.into()))?;
    let tail = Tail::Records {
        records,
        counts,
        user: id,
        request_id: request_id::current().unwrap_or_default(),
    };
    let body =
        stream::once(async move { Ok(Bytes::from(head)) }).chain(stream::unfold(tail, Tail::next));
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use futures_util::stream::{self, StreamExt};
    use kontor_domain::UserId;
    use kontor_service::ServiceError;
    use serde_json::Value;

    use super::{ExportCounts, Tail};

    async fn body(
        results: Vec<kontor_service::ServiceResult<Vec<kontor_service::ExportItem>>>,
    ) -> Vec<Value> {
        let tail = Tail::Records {
            records: stream::iter(results).boxed(),
            counts: ExportCounts::default(),
            user: UserId::generate(&kontor_domain::Region::parse("de").expect("a region")),
            request_id: "req_test".to_owned(),
        };
        let chunks: Vec<_> = stream::unfold(tail, Tail::next).collect().await;
        let mut text = Vec::new();
        for chunk in chunks {
            text.extend_from_slice(&chunk.expect("infallible"));
        }
        String::from_utf8(text)
            .expect("utf-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    #[tokio::test]
    async fn a_complete_stream_ends_with_its_summary() {
        let lines = body(vec![Ok(Vec::new()), Ok(Vec::new())]).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["type"], "summary");
        assert_eq!(lines[0]["data"]["complete"], true);
        assert_eq!(lines[0]["data"]["lines"], 0);
    }

    #[tokio::test]
    async fn a_failure_half_way_ends_with_an_error_line_and_no_summary() {
        let lines = body(vec![
            Ok(Vec::new()),
            Err(ServiceError::NotFound),
            Ok(Vec::new()),
        ])
        .await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["type"], "error");
        assert_eq!(lines[0]["data"]["code"], "not_found");
        assert_eq!(lines[0]["data"]["request_id"], "req_test");
        assert!(lines.iter().all(|l| l["type"] != "summary"));
    }
}
