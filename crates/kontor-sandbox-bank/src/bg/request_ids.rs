//! `X-Request-ID` on the POSTs that create a resource (consents, payments): a retry of the same
//! request answers the resource it created; the same id on a different request is refused.
//!
//! The spec defines the header as "ID of the request, unique to the call, as determined by the
//! initiating party" (`components/parameters/X-Request-ID` in psd2-api-1.3.8.yaml). Berlin Group
//! has no idempotency header, so a TPP whose answer was lost can only repeat the call with the
//! same id; the sandbox treats that as a retry for 24 hours. An id reused with another body or
//! product is not "unique to the call": the spec lists no dedicated code for that, so it gets
//! the generic `FORMAT_ERROR` (400) of `MessageCode400_AIS`/`MessageCode400_PIS`, naming the
//! header, and changes nothing.

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use super::error::{BgError, BgResult, Service};
use crate::state::BankState;
use crate::state::uk::{IdempotencyRecord, IdempotentOp};

/// How long a request id is remembered.
const WINDOW: Duration = Duration::hours(24);

fn key(op: IdempotentOp, request_id: &str) -> (String, IdempotentOp, String) {
    // Berlin Group has no client identity in the sandbox (no eIDAS certificate): one namespace.
    (String::new(), op, request_id.to_string())
}

/// The resource an earlier call with this `X-Request-ID` created, when `request` (what the call
/// asks for: product and body) is the same; `None` for a new id; an error for an id already
/// used on a different request.
pub fn earlier(
    state: &BankState,
    op: IdempotentOp,
    request_id: &str,
    request: &Value,
    now: OffsetDateTime,
    service: Service,
) -> BgResult<Option<String>> {
    let Some(record) = state
        .idempotency
        .get(&key(op, request_id))
        .filter(|r| now - r.created_at < WINDOW)
    else {
        return Ok(None);
    };
    if record.request.as_ref() == Some(request) {
        Ok(Some(record.resource_id.clone()))
    } else {
        Err(BgError::format(
            service,
            "header X-Request-ID was already used for a different request: \
             it must be unique to the call (repeat it only to retry the same request)",
        ))
    }
}

/// Records that the call with this `X-Request-ID` created `resource_id`.
pub fn remember(
    state: &mut BankState,
    op: IdempotentOp,
    request_id: &str,
    request: Value,
    resource_id: String,
    now: OffsetDateTime,
) {
    state.idempotency.insert(
        key(op, request_id),
        IdempotencyRecord {
            resource_id,
            created_at: now,
            request: Some(request),
        },
    );
}
