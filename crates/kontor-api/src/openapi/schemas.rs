//! Schemas the derive cannot write by itself: ids with their prefix pattern, and string enums
//! whose values come from the domain's own lists, so the document cannot drift from the code.
//! Each is a named component; fields point at it with `#[schema(value_type = …)]`.

use kontor_domain::account::{AccountKind, BalanceKind};
use kontor_domain::bank::Standard;
use kontor_domain::connection::{ConnectionStatus, FailureReason, Language};
use kontor_domain::event::EventType;
use kontor_domain::payment::{PaymentScheme, PaymentStatus};
use kontor_domain::transaction::TransactionStatus;
use kontor_domain::webhook::{
    AttemptError as AttemptErrorKind, DeliveryFailure, DeliveryState as DeliveryStateKind,
    DisabledReason as DisabledReasonKind, EndpointStatus,
};
use kontor_domain::{
    AccountId, ConnectionId as ConnectionIdKind, DeliveryId, EventId, PaymentId, UserId,
    WebhookEndpointId,
};
use kontor_service::ErrorCode;
use std::borrow::Cow;

use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A string schema with a pattern and one example.
fn pattern(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([example])
        .into()
}

/// A string enum with the given values.
pub(crate) fn words<'a>(
    description: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

macro_rules! id_schemas {
    ($($name:ident = $component:literal => $id:ty, $description:literal, $example:literal;)*) => {$(
        #[doc = $description]
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                pattern($description, <$id>::PATTERN, $example)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($component)
            }
        }
    )*};
}

id_schemas! {
    UserIdString = "UserId" => UserId, "A user id: `usr_`, the user's region, and 26 characters.",
        "usr_uk_01h8x3k4q9c2m7v5t6r8w0y1z2";
    ConnectionIdString = "ConnectionId" => ConnectionIdKind, "A connection id: `con_`, the user's region, and 26 characters.",
        "con_de_01h8x3k4q9c2m7v5t6r8w0y1z2";
    AccountIdString = "AccountId" => AccountId, "An account id: `acc_`, the user's region, and 26 characters.",
        "acc_de_01h8x3k4q9c2m7v5t6r8w0y1z2";
    EventIdString = "EventId" => EventId, "An event id: `evt_`, the region of the user it is about, and 26 characters.",
        "evt_uk_01h8x3k4q9c2m7v5t6r8w0y1z2";
    PaymentIdString = "PaymentId" => PaymentId, "A payment id: `pay_`, the user's region, and 26 characters.",
        "pay_de_01h8x3k4q9c2m7v5t6r8w0y1z2";
    WebhookEndpointIdString = "WebhookEndpointId" => WebhookEndpointId, "A webhook endpoint id: `whe_` and 26 characters.",
        "whe_01h8x3k4q9c2m7v5t6r8w0y1z2";
    DeliveryIdString = "DeliveryId" => DeliveryId, "A delivery id: `dlv_`, the region of its event, and 26 characters.",
        "dlv_uk_01h8x3k4q9c2m7v5t6r8w0y1z2";
}

/// Kontor's status of a payment: one vocabulary for both standards, described by the table of
/// which bank statuses lead to each (generated from the domain's mappings).
#[derive(Debug)]
pub struct PaymentStatusWord;

impl PartialSchema for PaymentStatusWord {
    fn schema() -> RefOr<Schema> {
        let description = format!(
            "Kontor's status of a payment: one vocabulary for both standards, by the stage the \
             payment is at. The bank's own status is kept verbatim in `history[].bank_status`.\n\n{}",
            PaymentStatus::vocabulary()
        );
        words(&description, PaymentStatus::ALL.map(PaymentStatus::as_str))
    }
}

impl ToSchema for PaymentStatusWord {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PaymentStatus")
    }
}

macro_rules! word_schemas {
    ($($name:ident = $component:literal, $description:literal => $values:expr;)*) => {$(
        #[doc = $description]
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                words($description, $values)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($component)
            }
        }
    )*};
}

word_schemas! {
    ConnectionStatusWord = "ConnectionStatus", "Where a connection stands."
        => ConnectionStatus::ALL.map(ConnectionStatus::as_str);
    FailureReasonWord = "FailureReason", "Why a connection failed."
        => FailureReason::ALL.map(FailureReason::as_str);
    PaymentSchemeWord = "PaymentScheme", "The payment scheme."
        => PaymentScheme::ALL.map(PaymentScheme::as_str);
    TransactionStatusWord = "TransactionStatus", "Whether a transaction is booked or still pending."
        => TransactionStatus::ALL.map(TransactionStatus::as_str);
    BalanceKindWord = "BalanceType", "The kind of balance, as the bank reports it."
        => BalanceKind::ALL.map(BalanceKind::as_str);
    AccountKindWord = "AccountKind", "The kind of account."
        => AccountKind::ALL.map(AccountKind::as_str);
    StandardWord = "BankStandard", "The API standard a bank speaks."
        => Standard::ALL.map(Standard::as_str);
    LanguageWord = "Language", "A language of the hosted pages."
        => Language::ALL.map(Language::as_str);
    AccessWord = "Access", "What a connection shares (balances and transactions imply accounts)."
        => ["accounts", "balances", "transactions"];
    EventTypeWord = "EventType", "An event type."
        => EventType::ALL.iter().map(|t| t.as_str());
    TestEventTypeWord = "TestEventType", "The type of the test event, never recorded."
        => [kontor_domain::event::WEBHOOK_TEST];
    EndpointStatusWord = "WebhookEndpointStatus", "Whether a webhook endpoint receives events."
        => EndpointStatus::ALL.iter().map(|s| s.as_str());
    DisabledReasonWord = "DisabledReason", "Who disabled a webhook endpoint: `tenant` (you did) or `failing` (the hub did)."
        => DisabledReasonKind::ALL.iter().map(|s| s.as_str());
    DeliveryStateWord = "DeliveryState", "Where a delivery stands; `pending` includes the attempt in flight."
        => DeliveryStateKind::ALL.iter().map(|s| s.as_str());
    DeliveryFailureWord = "DeliveryFailureReason", "Why a delivery was given up."
        => DeliveryFailure::ALL.iter().map(|s| s.as_str());
    AttemptErrorWord = "AttemptError", "What went wrong with one delivery attempt."
        => AttemptErrorKind::ALL.iter().map(|s| s.as_str());
    HealthWord = "HealthStatus", "The process is up and serving."
        => ["ok"];
    ReadinessWord = "ReadinessStatus", "Whether every database answers and is migrated; `draining` while the process stops."
        => ["ready", "not_ready", "draining"];
    DatabaseStatusWord = "DatabaseStatus", "How one database answered the readiness check."
        => ["ok", "unreachable", "migrations_pending", "timeout"];
    KeysStatusWord = "KeysStatus", "Whether this node's key-encryption keys open the key canary."
        => ["ok", "unknown_key", "wrong_key", "unreachable", "timeout"];
    CertificateStatusWord = "CertificateExpiry", "A bank certificate that expires within 14 days, or has expired."
        => ["expiring", "expired"];
    CertificateKindWord = "CertificateKind", "Which of the hub's certificates at a bank: `tls`, the transport certificate (QWAC, OBWAC); `seal`, the signing one (QSealC, OBSeal)."
        => ["tls", "seal"];
}

/// An IPv4 or IPv6 address.
#[derive(Debug)]
pub struct IpAddress;

impl PartialSchema for IpAddress {
    fn schema() -> RefOr<Schema> {
        let family = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        AnyOfBuilder::new()
            .description(Some("An IPv4 or IPv6 address."))
            .item(family(KnownFormat::Ipv4))
            .item(family(KnownFormat::Ipv6))
            .into()
    }
}

impl ToSchema for IpAddress {}

/// The event types a webhook endpoint selects: some types, or `["*"]` for every type
/// (including types added later); `*` does not mix with types.
#[derive(Debug)]
pub struct EventSelection;

impl PartialSchema for EventSelection {
    fn schema() -> RefOr<Schema> {
        let wildcard = ArrayBuilder::new()
            .items(words("Every event type.", ["*"]))
            .min_items(Some(1));
        let some = ArrayBuilder::new()
            .items(RefOr::Ref(Ref::from_schema_name(EventTypeWord::name())))
            .min_items(Some(1));
        AnyOfBuilder::new()
            .description(Some(
                "Event types, or `[\"*\"]` for every type (including types added later).",
            ))
            .item(some)
            .item(wildcard)
            .examples([serde_json::json!([
                "connection.active",
                "transactions.updated"
            ])])
            .into()
    }
}

impl ToSchema for EventSelection {}

/// A region code. The document a deployment serves lists its own regions as an enum
/// ([`super::document_for`]); this pattern is only the shape every region code has.
#[derive(Debug)]
pub struct RegionCode;

impl PartialSchema for RegionCode {
    fn schema() -> RefOr<Schema> {
        pattern(
            "A region this deployment serves; a user's data stays in it.",
            "^[a-z][a-z0-9]{1,9}$",
            "uk",
        )
    }
}

impl ToSchema for RegionCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(REGION)
    }
}

/// The component name of [`RegionCode`].
pub(crate) const REGION: &str = "Region";

/// A bank of the directory. Like regions, the document a deployment serves lists its own banks
/// as an enum; this pattern is only the shape every bank id has.
#[derive(Debug)]
pub struct BankIdString;

impl PartialSchema for BankIdString {
    fn schema() -> RefOr<Schema> {
        pattern(
            "A bank of this deployment's directory (`GET /v1/banks`).",
            "^[a-z][a-z0-9-]{1,39}$",
            "sonnenbank",
        )
    }
}

impl ToSchema for BankIdString {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(BANK)
    }
}

/// The component name of [`BankIdString`].
pub(crate) const BANK: &str = "BankId";

/// Where the user is sent back to: an absolute https URL with a host and no fragment. The
/// pattern is narrower than what the hub accepts, so that every URL it admits is one the hub
/// takes.
#[derive(Debug)]
pub struct HttpsUrl;

impl PartialSchema for HttpsUrl {
    fn schema() -> RefOr<Schema> {
        let schema = pattern(
            "An absolute https URL without a fragment, at most 2000 characters.",
            HTTPS_URL,
            "https://app.example/linked",
        );
        match schema {
            RefOr::T(Schema::Object(mut object)) => {
                object.max_length = Some(2000);
                RefOr::T(Schema::Object(object))
            }
            other => other,
        }
    }
}

impl ToSchema for HttpsUrl {}

/// An https URL: host labels (the last starting with a letter, so that it is never read as an
/// IPv4 address), an optional port, path and query.
pub(crate) const HTTPS_URL: &str = "^https://(?:[A-Za-z0-9-]{1,63}\\.){0,4}[A-Za-z][A-Za-z0-9-]{0,62}(?::[1-9][0-9]{0,3})?(?:/[A-Za-z0-9._~/-]*)?(?:\\?[A-Za-z0-9._~=&-]*)?$";

/// The served regions as the `RegionCode` schema.
pub(crate) fn served_regions<'a>(regions: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    words(
        "A region this deployment serves; a user's data stays in it.",
        regions,
    )
}

/// The directory's banks as the `BankIdString` schema.
pub(crate) fn directory_banks<'a>(banks: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    words(
        "A bank of this deployment's directory (`GET /v1/banks`).",
        banks,
    )
}

/// Every error code, from the service's [`ErrorCode`] table: the values, and a table of each
/// code's HTTP status and meaning.
#[derive(Debug)]
pub struct ErrorCodeWord;

impl PartialSchema for ErrorCodeWord {
    fn schema() -> RefOr<Schema> {
        let mut description = String::from(
            "Every error code the API answers with. Codes are stable: clients may match on them.\n\n\
             | code | status | meaning |\n|---|---|---|\n",
        );
        for code in ErrorCode::ALL {
            description.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status().as_u16(),
                code.description().replace('|', "\\|")
            ));
        }
        words(&description, ErrorCode::ALL.iter().map(|c| c.as_str()))
    }
}

impl ToSchema for ErrorCodeWord {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}
