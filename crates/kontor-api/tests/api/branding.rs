//! The hosted pages in the tenant's colours, with its logo and display name, and in French; the
//! logo's origin the only one besides the hub's that the pages load images from.

use kontor_domain::branding::{AccentColor, Branding, LogoUrl};
use kontor_domain::tenant::TenantName;
use kontor_domain::time::Timestamp;
use kontor_store::TenantStore;
use serde_json::json;

use crate::support::{REDIRECT, world};

async fn page(url: &str) -> (String, String) {
    let response = reqwest::Client::new().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (csp, response.text().await.unwrap())
}

#[tokio::test]
async fn the_connect_page_wears_the_tenants_branding() {
    let w = world().await;
    let user = w.user("alice").await;

    // Without branding: the tenant's name, the hub's colours, images from the hub only.
    let created = w.create_connection(&user, None).await;
    let (csp, body) = page(created["connect_url"].as_str().unwrap()).await;
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
    assert!(!csp.contains("https:"), "{csp}");
    assert!(body.contains("Acme Budget"), "{body}");
    assert!(!body.contains("tenant-logo"), "{body}");

    let branding = Branding {
        display_name: Some(TenantName::parse("Acme").unwrap()),
        logo_url: Some(LogoUrl::parse("https://cdn.acme.example/brand/logo.svg?v=2").unwrap()),
        accent_color: Some(AccentColor::parse("#ffd500").unwrap()),
    };
    w.app
        .stores
        .control
        .set_branding(&w.tenant_id, &branding, Timestamp::now())
        .await
        .unwrap();
    let created = w.create_connection(&user, None).await;
    let (csp, body) = page(created["connect_url"].as_str().unwrap()).await;
    assert!(
        csp.contains("img-src 'self' data: https://cdn.acme.example;"),
        "{csp}"
    );
    assert!(
        body.contains(
            "<img id=\"tenant-logo\" src=\"https://cdn.acme.example/brand/logo.svg?v=2\" alt=\"Acme\" referrerpolicy=\"no-referrer\">"
        ),
        "{body}"
    );
    assert!(body.contains("Acme would like to read"), "{body}");
    assert!(!body.contains("Acme Budget"), "{body}");
    // A light accent gets dark text on it.
    assert!(body.contains("border-top:4px solid #ffd500"), "{body}");
    assert!(
        body.contains("background:#ffd500;border-color:#ffd500;color:#111111"),
        "{body}"
    );
}

#[tokio::test]
async fn the_connect_page_speaks_french() {
    let w = world().await;
    let user = w.user("alice").await;
    let response = w
        .app
        .post_json(
            "/v1/connections",
            &w.token,
            &json!({"user_id": user, "redirect_uri": REDIRECT, "language": "fr"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    let (_, body) = page(created["connect_url"].as_str().unwrap()).await;
    assert!(body.contains("<html lang=\"fr\""), "{body}");
    for words in [
        "Connecter votre banque",
        "Acme Budget souhaite consulter",
        "Choisissez votre banque",
        "Annuler",
    ] {
        assert!(body.contains(words), "{words}: {body}");
    }
    // The list opens on the user's country (Germany for a `de` user), named in French.
    assert!(body.contains("Allemagne"), "{body}");
}
