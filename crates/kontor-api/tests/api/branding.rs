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

/// Sets the tenant's display name, accent colour and a logo on `cdn.acme.example`.
async fn brand(w: &crate::support::World, name: &str, accent: &str) {
    let branding = Branding {
        display_name: Some(TenantName::parse(name).unwrap()),
        logo_url: Some(LogoUrl::parse("https://cdn.acme.example/brand/logo.svg?v=2").unwrap()),
        accent_color: Some(AccentColor::parse(accent).unwrap()),
    };
    w.app
        .stores
        .control
        .set_branding(&w.tenant_id, &branding, Timestamp::now())
        .await
        .unwrap();
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

    brand(&w, "Acme", "#ffd500").await;
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

/// The payment page: the tenant's display name (escaped: a name is free text), its logo (the
/// one image origin besides the hub's) and its accent colour; a logo URL that is not https,
/// which the hub never accepts but a database may hold from elsewhere, is not rendered, and the
/// page still works.
#[tokio::test]
async fn the_payment_page_wears_the_tenants_branding() {
    let w = world().await;
    let bob = w.user("bob").await;
    let pay = |key: &'static str| {
        let w = &w;
        let request = crate::payments::body(&bob, "thames-bank", "4.20");
        async move {
            let response = crate::payments::post(w, Some(key), &request).await;
            assert_eq!(response.status(), 201);
            let created: serde_json::Value = response.json().await.unwrap();
            created["authorize_url"].as_str().unwrap().to_owned()
        }
    };

    // Without branding: the tenant's name, the hub's colours, images from the hub only.
    let (csp, body) = page(&pay("brand-pay-0").await).await;
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
    assert!(body.contains("Acme Budget"), "{body}");
    assert!(
        !body.contains("tenant-logo") && !body.contains("border-top:4px"),
        "{body}"
    );

    brand(&w, "Acme <script>alert(1)</script> & Co", "#1f3a93").await;
    let url = pay("brand-pay-1").await;
    let (csp, body) = page(&url).await;
    assert!(
        csp.contains("img-src 'self' data: https://cdn.acme.example;"),
        "{csp}"
    );
    let shown = "Acme &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co";
    assert!(
        body.contains(&format!(
            "<img id=\"tenant-logo\" src=\"https://cdn.acme.example/brand/logo.svg?v=2\" alt=\"{shown}\" referrerpolicy=\"no-referrer\">"
        )),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
    assert!(!body.contains("Acme Budget"), "{body}");
    // The page says who asks for the payment, in the display name, escaped.
    assert!(body.matches(shown).count() >= 2, "{body}");
    // A dark accent gets white text on it.
    assert!(body.contains("border-top:4px solid #1f3a93"), "{body}");
    assert!(
        body.contains("background:#1f3a93;border-color:#1f3a93;color:#ffffff"),
        "{body}"
    );

    // Once the payment is settled (here: cancelled by the tenant), its page says so, branded.
    let id = url
        .split("/pay/")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .unwrap()
        .to_owned();
    let cancelled = w
        .app
        .http
        .post(w.app.url(&format!("/v1/payments/{id}/cancel")))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancelled.status(),
        200,
        "{}",
        cancelled.text().await.unwrap()
    );
    let (csp, body) = page(&url).await;
    assert!(!body.contains("id=\"pay\""), "settled: {body}");
    assert!(body.contains("id=\"tenant-logo\""), "{body}");
    assert!(body.contains(shown) && !body.contains("<script>"), "{body}");
    assert!(body.contains("border-top:4px solid #1f3a93"), "{body}");
    assert!(csp.contains("https://cdn.acme.example"), "{csp}");

    // A logo URL the hub would refuse, written into the database behind its back: the page
    // renders without it (the name and colour stay), and allows no other image origin.
    for stored in [
        "javascript:alert(1)",
        "http://cdn.acme.example/logo.svg",
        "data:image/svg+xml,<svg onload=alert(1)>",
    ] {
        sqlx::query("UPDATE tenant_branding SET logo_url = $1 WHERE tenant_id = $2")
            .bind(stored)
            .bind(w.tenant_id.as_str())
            .execute(&w.app.stores.raw_control_pool())
            .await
            .unwrap();
        let (csp, body) = page(&url).await;
        assert!(csp.contains("img-src 'self' data:;"), "{stored}: {csp}");
        assert!(!body.contains("tenant-logo"), "{stored}: {body}");
        assert!(
            !body.contains(stored) && !body.contains("alert(1)>"),
            "{stored}: {body}"
        );
        assert!(body.contains(shown), "{stored}: {body}");
        assert!(
            body.contains("border-top:4px solid #1f3a93"),
            "{stored}: {body}"
        );
    }
}
