//! How the payloads' fields appear in the OpenAPI document: ids, status words and bank ids as
//! references to the document's named schemas (which the API defines from the same domain
//! types), so a payload says `ConnectionId` rather than just "a string".

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};

fn named(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// `name`, or null.
fn nullable(name: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(named(name))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

pub(crate) fn connection_id() -> RefOr<Schema> {
    named("ConnectionId")
}

pub(crate) fn account_id() -> RefOr<Schema> {
    named("AccountId")
}

pub(crate) fn payment_id() -> RefOr<Schema> {
    named("PaymentId")
}

pub(crate) fn user_id() -> RefOr<Schema> {
    named("UserId")
}

pub(crate) fn endpoint_id() -> RefOr<Schema> {
    named("WebhookEndpointId")
}

pub(crate) fn bank_id() -> RefOr<Schema> {
    named("BankId")
}

pub(crate) fn nullable_bank_id() -> RefOr<Schema> {
    nullable("BankId")
}

pub(crate) fn payment_status() -> RefOr<Schema> {
    named("PaymentStatus")
}

pub(crate) fn disabled_reason() -> RefOr<Schema> {
    named("DisabledReason")
}

pub(crate) fn failure_reason() -> RefOr<Schema> {
    nullable("FailureReason")
}

pub(crate) fn ended_by() -> RefOr<Schema> {
    nullable("EndedBy")
}

pub(crate) fn nullable_instant() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}
