//! The document's `webhooks` (OpenAPI 3.1): one entry per event type, describing the POST a
//! tenant's endpoint receives — the Standard Webhooks headers and the body, whose `data` is the
//! payload type the hub builds the event from (`kontor_domain::event::payload`, which describes
//! itself). The test event has an entry of its own.

use kontor_domain::event::payload::WebhookTest;
use kontor_domain::event::{EventType, WEBHOOK_TEST, payload_schemas};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{PathsBuilder, Ref, RefOr, Required, Schema};
use utoipa::{Modify, ToSchema};

use super::schemas::{self, words};

pub(super) struct Webhooks;

fn named(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The body of a delivery of `event_type`, whose `data` is the schema `payload`.
fn envelope(event_type: &str, payload: &str) -> RefOr<Schema> {
    let user = OneOfBuilder::new()
        .item(named(&schemas::UserIdString::name()))
        .item(ObjectBuilder::new().schema_type(Type::Null));
    let created_at = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    ObjectBuilder::new()
        .property("id", named(&schemas::EventIdString::name()))
        .property("type", words("The event type.", [event_type]))
        .property("user_id", user)
        .property("data", named(payload))
        .property("created_at", created_at)
        .required("id")
        .required("type")
        .required("user_id")
        .required("data")
        .required("created_at")
        .into()
}

fn header(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn delivery(event_type: &str, description: &str, payload: &str) -> PathItem {
    let body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(envelope(event_type, payload)))
                .build(),
        )
        .build();
    let operation = OperationBuilder::new()
        .tag("webhooks")
        .summary(Some(event_type))
        .description(Some(description))
        .parameter(header(
            "webhook-id",
            "The event id: the same at every attempt and redelivery, for dropping repeats.",
        ))
        .parameter(header(
            "webhook-timestamp",
            "When this attempt was made, in seconds since the Unix epoch.",
        ))
        .parameter(header(
            "webhook-signature",
            "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under \
             the endpoint's secret (the bytes after `whsec_`, base64-decoded); two, \
             space-separated, for 24 hours after a rotation.",
        ))
        .request_body(Some(body))
        .response(
            "200",
            ResponseBuilder::new().description(
                "Any 2xx within the timeout delivers the event; anything else is retried.",
            ),
        )
        .build();
    PathItem::new(HttpMethod::Post, operation)
}

impl Modify for Webhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut paths = PathsBuilder::new();
        for t in EventType::ALL {
            paths = paths.path(
                t.as_str(),
                delivery(t.as_str(), t.description(), t.payload_name()),
            );
        }
        paths = paths.path(
            WEBHOOK_TEST,
            delivery(
                WEBHOOK_TEST,
                "Sent only by `POST /v1/webhook-endpoints/{id}/test`, to that endpoint alone; \
                 never recorded, never selected by `events`.",
                &WebhookTest::name(),
            ),
        );
        openapi.webhooks = Some(paths.build());
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in payload_schemas() {
            components.schemas.insert(name.into_owned(), schema);
        }
    }
}
