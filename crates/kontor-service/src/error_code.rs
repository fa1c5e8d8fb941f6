//! Every error code Kontor answers with, as one enum: its stable wire string, its HTTP status and
//! a one-line meaning. The services raise these codes, the API answers them (mapping each to its
//! response in one exhaustive `match`) and the OpenAPI document lists them, all from this table,
//! so a code cannot be raised without being answered and documented.

use http::StatusCode;
use kontor_banks::BankError;
use serde::{Serialize, Serializer};

macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $code:literal, $doc:literal)),* $(,)?) => {
        /// Every error code the API answers with. Codes are stable: clients may match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable snake_case code clients match on.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }

            /// What the code means, in one line, for people (and the API document).
            pub fn description(self) -> &'static str {
                match self { $(ErrorCode::$variant => $doc,)* }
            }
        }
    };
}

error_codes! {
    MalformedJson => (BAD_REQUEST, "malformed_json", "The body is not syntactically valid JSON."),
    UnknownField => (BAD_REQUEST, "unknown_field", "The body has a field this endpoint does not accept."),
    MissingField => (BAD_REQUEST, "missing_field", "A required field is missing from the body."),
    InvalidType => (BAD_REQUEST, "invalid_type", "A field has the wrong JSON type."),
    InvalidRegion => (BAD_REQUEST, "invalid_region", "The region is malformed or not served by this deployment."),
    InvalidExternalId => (BAD_REQUEST, "invalid_external_id", "external_id must be 1-255 characters without control characters or surrounding spaces."),
    InvalidId => (BAD_REQUEST, "invalid_id", "An id in the path or query is not a well-formed id of the expected type."),
    InvalidQuery => (BAD_REQUEST, "invalid_query", "A query parameter is unknown, malformed or out of range."),
    InvalidCursor => (BAD_REQUEST, "invalid_cursor", "The pagination cursor is not one this API issued."),
    InvalidStatus => (BAD_REQUEST, "invalid_status", "status is not one of the statuses of the records listed."),
    InvalidTimeRange => (BAD_REQUEST, "invalid_time_range", "created_after and created_before are RFC 3339 instants, created_after before created_before."),
    CursorExpired => (GONE, "cursor_expired", "The changes since this changes-feed cursor are no longer all kept (past retention, or from before an upgrade): call the feed again without a cursor and replace your copy with what it lists."),
    InvalidEncoding => (BAD_REQUEST, "invalid_encoding", "The path or query is not valid UTF-8 once percent-decoded."),
    UriTooLong => (URI_TOO_LONG, "uri_too_long", "The request's path and query are longer than the server accepts."),
    HeadersTooLarge => (REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "The request's headers are larger than the server accepts."),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "The request body has a content type this endpoint does not accept."),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "The request body exceeds the configured size limit."),
    MissingToken => (UNAUTHORIZED, "missing_token", "No bearer token was sent."),
    InvalidToken => (UNAUTHORIZED, "invalid_token", "The bearer token is malformed, forged, or its client was revoked."),
    TokenExpired => (UNAUTHORIZED, "token_expired", "The bearer token has expired; request a new one."),
    ClientCertificateRequired => (UNAUTHORIZED, "client_certificate_required", "The token is bound to a client certificate (RFC 8705) and the request presented none over mutual TLS."),
    ClientCertificateMismatch => (UNAUTHORIZED, "client_certificate_mismatch", "The request's client certificate is not the one the token is bound to, or that certificate is no longer bound to the token's client."),
    TokenNotBound => (UNAUTHORIZED, "token_not_bound", "The token's client is bound to a client certificate but the token is not (it was issued before the binding); request a new token over mutual TLS."),
    InsufficientScope => (FORBIDDEN, "insufficient_scope", "The token lacks the scope this endpoint requires."),
    InvalidClient => (UNAUTHORIZED, "invalid_client", "Client authentication failed (unknown client, wrong secret, revoked, or a client bound to a certificate that did not present it over mutual TLS)."),
    InvalidRequest => (BAD_REQUEST, "invalid_request", "The token request is missing a parameter or repeats one."),
    UnsupportedGrantType => (BAD_REQUEST, "unsupported_grant_type", "Only the client_credentials grant is supported."),
    InvalidScope => (BAD_REQUEST, "invalid_scope", "A requested scope is unknown or not granted to this client."),
    NotFound => (NOT_FOUND, "not_found", "No such resource (or it belongs to another tenant)."),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "The resource does not support this method."),
    NoOpenCell => (SERVICE_UNAVAILABLE, "no_open_cell", "No cell of the region takes new users now (every cell the tenant may use is draining or closed); nothing was created. Retry later; the operator opens a cell."),
    UserExists => (CONFLICT, "user_exists", "The tenant already has a user with this external_id in this region."),
    UnknownBank => (BAD_REQUEST, "unknown_bank", "No bank with this id in the directory."),
    InvalidState => (BAD_REQUEST, "invalid_state", "The bank's redirect back to the hub carries a state that names no link or payment, or is not its own."),
    DecoupledStartsUsed => (TOO_MANY_REQUESTS, "decoupled_starts_used", "This link has sent all the approval requests to the banking app (decoupled SCA) it may; sign in at the bank instead."),
    InvalidRedirectUri => (BAD_REQUEST, "invalid_redirect_uri", "redirect_uri must be an absolute https URL without user information or a fragment and, where the tenant has registered redirect URIs, one of them."),
    InvalidAccess => (BAD_REQUEST, "invalid_access", "access lists what to share: accounts, balances, transactions."),
    InvalidLanguage => (BAD_REQUEST, "invalid_language", "language must be en or de."),
    InvalidPsuId => (BAD_REQUEST, "invalid_psu_id", "psu_id (the user's bank login name) must be 1-100 characters without control characters."),
    InvalidIpAddress => (BAD_REQUEST, "invalid_ip_address", "psu_ip_address must be an IPv4 or IPv6 address."),
    InvalidDate => (BAD_REQUEST, "invalid_date", "Dates are YYYY-MM-DD, and from must not be after to."),
    ConnectionNotActive => (CONFLICT, "connection_not_active", "The connection is not active (pending, expired, revoked or failed)."),
    SyncInProgress => (CONFLICT, "sync_in_progress", "A sync of this connection is already running; retry shortly."),
    ReconfirmationNotApplicable => (CONFLICT, "reconfirmation_not_applicable", "Only UK Open Banking connections are reconfirmed; others need a new connection."),
    ConsentExpired => (CONFLICT, "consent_expired", "The bank reports the consent expired; the connection is now expired."),
    ConsentInvalid => (CONFLICT, "consent_invalid", "The bank no longer honours the consent; the connection has ended."),
    AccessExceeded => (TOO_MANY_REQUESTS, "access_exceeded", "Today's unattended reads of this consent are used up."),
    BankRateLimited => (TOO_MANY_REQUESTS, "bank_rate_limited", "The bank asks to slow down; retry after the Retry-After period."),
    BankUnavailable => (SERVICE_UNAVAILABLE, "bank_unavailable", "The bank did not answer (timeout, connection error or 5xx); retry later."),
    BankRejected => (BAD_GATEWAY, "bank_rejected", "The bank refused the request."),
    BankProtocolError => (BAD_GATEWAY, "bank_protocol_error", "The bank's answer did not follow the standard."),
    MissingIdempotencyKey => (BAD_REQUEST, "missing_idempotency_key", "Requests that move money need an Idempotency-Key header."),
    InvalidIdempotencyKey => (BAD_REQUEST, "invalid_idempotency_key", "An Idempotency-Key is 1-255 visible ASCII characters."),
    IdempotencyKeyReused => (UNPROCESSABLE_ENTITY, "idempotency_key_reused", "This Idempotency-Key was used with a different request."),
    IdempotencyKeyInUse => (CONFLICT, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed; retry shortly."),
    PaymentNotCancellable => (CONFLICT, "payment_not_cancellable", "The payment can no longer be cancelled: it is final already, the bank refused (settled, past its cut-off), or its standard cannot cancel it once authorised (UK domestic payments)."),
    PaymentBusy => (CONFLICT, "payment_busy", "The payment is being sent to or completed at the bank right now; retry in a moment."),
    InvalidAmount => (BAD_REQUEST, "invalid_amount", "amount.value must be a positive decimal string with no more decimals than the currency has."),
    InvalidCurrency => (BAD_REQUEST, "invalid_currency", "amount.currency must be an ISO 4217 code."),
    CurrencyNotSupported => (BAD_REQUEST, "currency_not_supported", "The bank does not make payments in this currency."),
    InvalidIban => (BAD_REQUEST, "invalid_iban", "The IBAN fails its checksum, length or format."),
    InvalidAccountNumber => (BAD_REQUEST, "invalid_account_number", "A UK account is a 6-digit sort code and an 8-digit account number."),
    InvalidCreditorName => (BAD_REQUEST, "invalid_creditor_name", "creditor.name must be 1-70 characters without control characters or surrounding spaces."),
    InvalidRemittance => (BAD_REQUEST, "invalid_remittance", "remittance must be 1-140 characters without control characters or surrounding spaces."),
    InvalidEndToEndId => (BAD_REQUEST, "invalid_end_to_end_id", "end_to_end_id must be 1-35 visible ASCII characters."),
    DebtorAccountRequired => (BAD_REQUEST, "debtor_account_required", "Berlin Group banks need the account to pay from (debtor_account)."),
    SchemeNotSupported => (BAD_REQUEST, "scheme_not_supported", "The bank does not offer this kind of payment (e.g. instant SEPA, or SEPA at a UK bank)."),
    InvalidWebhookUrl => (BAD_REQUEST, "invalid_webhook_url", "url must be an absolute https URL (http only where the operator allows it) with a host that resolves, without credentials or a fragment."),
    WebhookUrlNotAllowed => (BAD_REQUEST, "webhook_url_not_allowed", "The URL's host is, or resolves to, a private, loopback, link-local or reserved address."),
    InvalidEventTypes => (BAD_REQUEST, "invalid_event_types", "events lists known event types, or is [\"*\"] for all of them."),
    InvalidDescription => (BAD_REQUEST, "invalid_description", "description must be at most 500 characters without control characters."),
    InvalidEndpointStatus => (BAD_REQUEST, "invalid_endpoint_status", "status must be enabled or disabled."),
    WebhookEndpointLimit => (CONFLICT, "webhook_endpoint_limit", "The tenant has as many webhook endpoints as a tenant may have."),
    WebhookEndpointDisabled => (CONFLICT, "webhook_endpoint_disabled", "The webhook endpoint is disabled; enable it first."),
    NoWebhookEndpoints => (CONFLICT, "no_webhook_endpoints", "No enabled webhook endpoint selects this event's type."),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited", "Too many requests (or failed authentications) for a rate limit; retry after the Retry-After period."),
    SubjectMoving => (SERVICE_UNAVAILABLE, "subject_moving", "The tenant or user is being moved between cells and its writes are paused (usually for seconds); nothing was written. Retry after the Retry-After period; reads go on."),
    ServiceUnavailable => (SERVICE_UNAVAILABLE, "service_unavailable", "A database is unreachable or overloaded; retry later."),
    InternalError => (INTERNAL_SERVER_ERROR, "internal_error", "An unexpected error; the request id identifies it in the logs."),
}

impl ErrorCode {
    /// The code of a bank error, as the API and events report it.
    pub fn of_bank(err: &BankError) -> Self {
        match err {
            BankError::Unavailable { .. } => ErrorCode::BankUnavailable,
            BankError::RateLimited { .. } => ErrorCode::BankRateLimited,
            BankError::AccessExceeded => ErrorCode::AccessExceeded,
            BankError::ConsentExpired => ErrorCode::ConsentExpired,
            BankError::ConsentInvalid { .. } => ErrorCode::ConsentInvalid,
            BankError::Rejected { .. } => ErrorCode::BankRejected,
            BankError::Protocol { .. } => ErrorCode::BankProtocolError,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
            assert!(code.status().is_client_error() || code.status().is_server_error());
            assert!(!code.description().is_empty(), "{code}");
        }
    }
}
