//! The OpenAPI document, generated from the handlers' annotations, and the `/docs` page that
//! renders it with Swagger UI's assets compiled into the binary (nothing is fetched at run time).

mod errors;
pub mod schemas;
mod webhooks;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use errors::StandardErrors;
use kontor_domain::Region;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use webhooks::Webhooks;

use crate::error::{ErrorBody, ErrorEnvelope};
use crate::routes::{
    accounts, banks, changes, connections, deliveries, event_types, events, lists, oauth, ops,
    payments, user_export, users, webhook_endpoints, webhook_test,
};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Kontor API",
        description = "One REST API to your users' bank accounts. Every error has the shape \
            `{\"error\": {\"code\", \"message\", \"request_id\"}}`; the `code` values are listed in \
            the `ErrorCode` schema and are stable. Lists are paged with `limit` and `cursor`; \
            the response's `next_cursor` is null on the last page.",
    ),
    paths(
        oauth::token,
        users::create, users::list, users::get, users::delete, user_export::export,
        banks::list,
        connections::create, lists::connections, connections::get, connections::delete,
        connections::refresh, connections::reconfirm, changes::list,
        accounts::list, accounts::get, accounts::balances, accounts::transactions,
        event_types::list, events::list, events::get, events::redeliver,
        webhook_endpoints::create, webhook_endpoints::list, webhook_endpoints::get,
        webhook_endpoints::update, webhook_endpoints::delete, webhook_endpoints::rotate_secret,
        webhook_test::send,
        deliveries::list,
        payments::create, lists::payments, payments::get, payments::cancel,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(
        ErrorEnvelope, ErrorBody, schemas::ErrorCodeWord,
        schemas::UserIdString, schemas::ConnectionIdString, schemas::AccountIdString,
        schemas::EventIdString, schemas::PaymentIdString, schemas::WebhookEndpointIdString,
        schemas::DeliveryIdString, schemas::RegionCode, schemas::IpAddress,
        schemas::BankIdString, schemas::HttpsUrl,
        schemas::ConnectionStatusWord, schemas::FailureReasonWord, schemas::PaymentStatusWord,
        schemas::PaymentSchemeWord, schemas::TransactionStatusWord, schemas::BalanceKindWord,
        schemas::AccountKindWord, schemas::StandardWord, schemas::LanguageWord,
        schemas::AccessWord, schemas::EventTypeWord, schemas::EventSelection,
        schemas::EndpointStatusWord, schemas::DisabledReasonWord, schemas::DeliveryStateWord,
        schemas::DeliveryFailureWord, schemas::AttemptErrorWord, schemas::HealthWord, schemas::ReadinessWord,
        schemas::DatabaseStatusWord, schemas::KeysStatusWord, schemas::CertificateStatusWord,
        schemas::CertificateKindWord,
    )),
    modifiers(&SecuritySchemes, &StandardErrors, &Webhooks),
    tags(
        (name = "auth", description = "OAuth2 client credentials"),
        (name = "users", description = "End users and their home regions"),
        (name = "banks", description = "The bank directory"),
        (name = "connections", description = "Linking bank accounts: consents and their lifecycle"),
        (name = "accounts", description = "Accounts, balances and transactions read from banks"),
        (name = "events", description = "The event log (what webhooks deliver)"),
        (name = "webhooks", description = "Webhook endpoints (Standard Webhooks signatures) and their delivery log"),
        (name = "payments", description = "Payment initiation, exactly once per Idempotency-Key"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The document as the code describes it, with regions as any well-formed region code.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document a deployment serves: [`document`], with the regions it serves and the banks of
/// its directory as the only values a region or a bank id may take.
pub fn document_for<'a>(
    regions: impl IntoIterator<Item = &'a Region>,
    banks: impl IntoIterator<Item = &'a str>,
) -> utoipa::openapi::OpenApi {
    let mut doc = document();
    let served = schemas::served_regions(regions.into_iter().map(Region::as_str));
    let banks = schemas::directory_banks(banks);
    if let Some(components) = doc.components.as_mut() {
        components
            .schemas
            .insert(schemas::RegionCode::name().into_owned(), served);
        components
            .schemas
            .insert(schemas::BankIdString::name().into_owned(), banks);
    }
    doc
}

/// The document as `/openapi.json` serves it: [`document_for`] the deployment's regions and
/// banks, built on its first request and kept as its JSON. A hub nobody asks for its document
/// neither builds it nor holds it; one that is asked keeps the bytes, not the document's tree
/// (a few hundred kilobytes against the tree's allocations), and serialises it once.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    regions: Arc<[Region]>,
    banks: Arc<[String]>,
    json: Arc<OnceLock<Bytes>>,
}

impl Served {
    pub(crate) fn new(regions: Vec<Region>, banks: Vec<String>) -> Self {
        Self {
            regions: regions.into(),
            banks: banks.into(),
            json: Arc::new(OnceLock::new()),
        }
    }

    /// The document's JSON, built on the first call.
    pub(crate) fn json(&self) -> Result<Bytes, serde_json::Error> {
        if let Some(json) = self.json.get() {
            return Ok(json.clone());
        }
        let document = document_for(self.regions.iter(), self.banks.iter().map(String::as_str));
        let built = Bytes::from(serde_json::to_vec(&document)?);
        // Two first requests at once may both build it; one of the two is kept.
        Ok(self.json.get_or_init(|| built).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_is_built_once_and_names_the_deployments_regions_and_banks() {
        let served = Served::new(
            vec![Region::parse("de").unwrap()],
            vec!["sonnenbank".to_owned()],
        );
        assert!(served.json.get().is_none(), "built before it was asked for");
        // The router hands each request a clone: the clones share what the first one built.
        let per_request = served.clone();
        let first = per_request.json().unwrap();
        let again = served.json().unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr(), "serialised again");
        let doc: serde_json::Value = serde_json::from_slice(&first).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Region"]["enum"], serde_json::json!(["de"]));
        assert_eq!(schemas["BankId"]["enum"], serde_json::json!(["sonnenbank"]));
    }
}
