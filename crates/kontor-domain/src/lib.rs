//! Kontor's domain: the vocabulary of the hub as plain types, parsed at the boundary so that
//! invalid states cannot be represented further in. Nothing here does I/O.

pub mod account;
pub mod account_reference;
pub mod bank;
pub mod bic;
pub mod branding;
pub mod cell;
pub mod certificate;
pub mod clock;
pub mod connection;
pub mod currency;
pub mod event;
pub mod gauges;
pub mod iban;
pub mod id;
pub mod list;
pub mod money;
pub mod payment;
pub mod reconcile;
pub mod redirect_uri;
pub mod region;
pub mod tenant;
pub mod time;
pub mod transaction;
pub mod uk_account;
pub mod user;
pub mod webhook;
pub mod words;

pub use bic::{Bic, BicError};
pub use cell::{CellId, CellIdError, CellState, HomeCell};
pub use certificate::{CertificateBinding, CertificateThumbprint, ThumbprintError};
pub use clock::{Clock, ManualClock};
pub use connection::{Connection, ConnectionEvent, ConnectionStatus, NewConnection};
pub use currency::{Currency, CurrencyError};
pub use iban::{Iban, IbanError};
pub use id::{
    AccountId, ApiClientId, ConnectionId, DeliveryId, EventId, IdError, PaymentId, TenantId,
    TransactionId, UserId, WebhookEndpointId,
};
pub use money::{Money, MoneyError};
pub use payment::{
    CreditorName, EndToEndId, FieldError, IdempotencyKey, Iso20022Status, Payment, PaymentPhase,
    PaymentScheme, PaymentStatus, RemittanceInfo,
};
pub use redirect_uri::{RedirectUri, RedirectUriError};
pub use region::{Region, RegionError};
pub use uk_account::{SortCode, UkAccountError, UkAccountNumber};

/// The `tracing` target of the spans exported as OpenTelemetry traces (and of nothing else).
/// Only spans with this target leave the process over OTLP, with the attributes they declare:
/// route templates, bank and operation names, statuses, counts — never a user's or account's id
/// or anything personal. The log's own spans, which may carry ids, never do.
pub const TRACE_TARGET: &str = "kontor.trace";
