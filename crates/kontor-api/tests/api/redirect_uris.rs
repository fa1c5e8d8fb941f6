//! Redirect URIs: a tenant whose operator registered a list may send its users back only to a
//! URI on it (compared after normalisation), for connections and payments alike; URIs with user
//! information are refused for everyone.

use kontor_domain::TenantId;
use kontor_domain::time::Timestamp;
use kontor_store::TenantStore;
use kontor_test_support::error_code;
use serde_json::{Value, json};

use crate::support::{World, world};

const LINKED: &str = "https://tenant.example/linked";

async fn tenant_of(w: &World) -> TenantId {
    let tenants = w.app.stores.control.list_tenants().await.unwrap();
    assert_eq!(tenants.len(), 1);
    tenants[0].id.clone()
}

async fn register(w: &World, tenant: &TenantId, uris: &[&str]) {
    let uris: Vec<String> = uris
        .iter()
        .map(|u| kontor_service::normalise_redirect_uri(u, false).unwrap())
        .collect();
    w.app
        .stores
        .control
        .set_redirect_uris(tenant, &uris, Timestamp::now())
        .await
        .unwrap();
}

async fn connect(w: &World, user: &str, redirect_uri: &str) -> reqwest::Response {
    let body = json!({ "user_id": user, "redirect_uri": redirect_uri });
    w.app.post_json("/v1/connections", &w.token, &body).await
}

/// The error's code and message.
async fn refusal(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    (
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_registered_list_limits_where_users_are_sent() {
    let w = world().await;
    let tenant = tenant_of(&w).await;
    let user = w.user("alice").await;
    // Without a list, any https URI.
    assert_eq!(
        connect(&w, &user, "https://elsewhere.example/")
            .await
            .status(),
        201
    );

    register(
        &w,
        &tenant,
        &[LINKED, "https://tenant.example/other?from=kontor"],
    )
    .await;
    for allowed in [
        LINKED,
        "HTTPS://Tenant.Example:443/linked",
        "https://tenant.example/other?from=kontor",
    ] {
        assert_eq!(connect(&w, &user, allowed).await.status(), 201, "{allowed}");
    }
    for refused in [
        "https://evil.example/linked",
        "https://tenant.example/linked/",
        "https://tenant.example/linked?x=1",
        "https://tenant.example:8443/linked",
        "https://tenant.example/other",
    ] {
        let (code, message) = refusal(connect(&w, &user, refused).await).await;
        assert_eq!(code, "invalid_redirect_uri", "{refused}");
        assert!(message.contains("registered"), "{refused}: {message}");
    }

    // Clearing the list allows any again.
    register(&w, &tenant, &[]).await;
    assert_eq!(
        connect(&w, &user, "https://evil.example/").await.status(),
        201
    );
}

#[tokio::test]
async fn payments_follow_the_list_and_store_nothing_when_refused() {
    let w = world().await;
    let tenant = tenant_of(&w).await;
    register(&w, &tenant, &["https://tenant.example/paid"]).await;
    let user = w.user("alice").await;
    let mut body = json!({
        "user_id": user,
        "bank_id": "sonnenbank",
        "debtor_account": {"iban": "DE21642494690527912747"},
        "creditor": {"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"},
        "amount": {"value": "12.34", "currency": "EUR"},
        "redirect_uri": "https://evil.example/paid",
    });
    let post = async |body: &Value| {
        w.app
            .http
            .post(w.app.url("/v1/payments"))
            .bearer_auth(&w.token)
            .header("idempotency-key", "order-1")
            .json(body)
            .send()
            .await
            .unwrap()
    };
    let (code, _) = refusal(post(&body).await).await;
    assert_eq!(code, "invalid_redirect_uri");
    // The key was not spent: the corrected request goes through under it.
    body["redirect_uri"] = json!("https://tenant.example/paid");
    assert_eq!(post(&body).await.status(), 201);
}

#[tokio::test]
async fn user_information_is_refused_always() {
    let w = world().await;
    let user = w.user("alice").await;
    for uri in [
        "https://user:secret@tenant.example/linked",
        "https://tenant.example@evil.example/linked",
        "https://:x@tenant.example/linked",
    ] {
        let response = connect(&w, &user, uri).await;
        assert_eq!(error_code(response).await, "invalid_redirect_uri", "{uri}");
    }
}
