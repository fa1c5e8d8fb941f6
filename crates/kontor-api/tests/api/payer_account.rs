//! The account a payment is made from. A UK payment whose request named none learns it from the
//! bank once the user chose it there and authorised (the connector asks with
//! `ReadRefundAccount`): `GET /v1/payments/{id}` shows it as `debtor_account`, with the
//! account's name, kept sealed in the payment's details and erased with the user. A Berlin
//! Group payment shows the account its request named, the same way.

use serde_json::Value;

use crate::payments::{authorise, body, payment, post, settle};
use crate::support::world;

async fn raw_row(w: &crate::support::World, id: &str) -> Option<(String, Option<String>)> {
    sqlx::query_as("SELECT details, session FROM payments WHERE id = $1")
        .bind(id)
        .fetch_optional(&w.app.stores.raw_cell_pool("uk"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_uk_payment_shows_the_account_the_user_paid_from() {
    let w = world().await;
    let bob = w.user("bob").await;
    let response = post(&w, Some("payer-uk-1"), &body(&bob, "thames-bank", "6.70")).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created["debtor_account"].is_null(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    authorise(&w, created["authorize_url"].as_str().unwrap(), "bob").await;
    let paid = payment(&w, &id).await;
    let debtor = &paid["debtor_account"];
    let sort_code = debtor["sort_code"].as_str().expect("a sort code");
    let number = debtor["account_number"]
        .as_str()
        .expect("an account number");
    let bobs = w.sandbox.accounts("thames-bank").unwrap();
    assert!(
        bobs.iter().any(|a| a.username == "bob"
            && a.sort_code.as_deref() == Some(sort_code)
            && a.account_number.as_deref() == Some(number)),
        "one of bob's accounts: {debtor}"
    );
    assert!(debtor["iban"].is_null(), "{debtor}");
    let name = debtor["name"]
        .as_str()
        .expect("the account's name")
        .to_owned();
    assert!(!name.is_empty());

    // Sealed: the cell's row holds neither the account number nor the name in the clear.
    let (details, session) = raw_row(&w, &id).await.unwrap();
    for stored in [Some(details), session].into_iter().flatten() {
        assert!(
            !stored.contains(number) && !stored.contains(&name),
            "{stored}"
        );
    }

    // Settled, it still says so; the tenant's export of the user says so too.
    let done = settle(&w, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(&done["debtor_account"], debtor);
    let export = w
        .app
        .get(&format!("/v1/users/{bob}/export"), &w.token)
        .await
        .text()
        .await
        .unwrap();
    let exported = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["type"] == "payment" && line["data"]["id"] == id.as_str())
        .expect("the payment is exported");
    let exported = &exported["data"];
    assert_eq!(&exported["debtor_account"], debtor);

    // Erasing the user erases it with the payment.
    let erased = w.app.delete(&format!("/v1/users/{bob}"), &w.token).await;
    assert_eq!(erased.status(), 204);
    let gone = w
        .app
        .get(&format!("/v1/payments/{id}"), &w.token)
        .await
        .status();
    assert_eq!(gone, 404);
    assert!(raw_row(&w, &id).await.is_none(), "the row is gone");
}

#[tokio::test]
async fn a_berlin_group_payment_shows_the_account_its_request_named() {
    let w = world().await;
    let alice = w.user("alice").await;
    let request = body(&alice, "sonnenbank", "3.10");
    let response = post(&w, Some("payer-bg-1"), &request).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let named = serde_json::json!({
        "iban": request["debtor_account"]["iban"],
        "sort_code": null,
        "account_number": null,
        "name": null,
    });
    assert_eq!(created["debtor_account"], named);
    let id = created["id"].as_str().unwrap();
    authorise(&w, created["authorize_url"].as_str().unwrap(), "alice").await;
    assert_eq!(payment(&w, id).await["debtor_account"], named);
}
