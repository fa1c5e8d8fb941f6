//! After linking: revocation reaches the bank, expiry (the bank's and the hub's own 90/180-day
//! rules) ends connections with an event, tenants are told before a consent lapses, UK
//! connections are reconfirmed, and links nobody finished are closed.

use kontor_banks::{ConsentOutcome, ConsentSession};
use kontor_domain::bank::BankId;
use kontor_domain::time::Timestamp;
use kontor_test_support::error_code;
use serde_json::Value;

use crate::support::{http_settings, test_api_settings, world, world_with};

#[tokio::test]
async fn revoking_withdraws_the_consent_at_the_bank() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (_, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        let consent_id = w.session(&id).await.consent_id;

        let response = w
            .app
            .delete(&format!("/v1/connections/{id}"), &w.token)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "revoked");

        // Ask the bank itself.
        let connector = w
            .app
            .hub
            .directory()
            .connector(&BankId::parse(bank).unwrap(), &w.tenant_id)
            .unwrap();
        let mut probe = ConsentSession {
            consent_id,
            ..ConsentSession::default()
        };
        let at_bank = connector.consent_status(&mut probe).await.unwrap();
        assert!(
            matches!(at_bank, ConsentOutcome::Revoked),
            "{bank}: {at_bank:?}"
        );

        // Revoking again is harmless; syncing is not possible any more.
        assert_eq!(
            w.app
                .delete(&format!("/v1/connections/{id}"), &w.token)
                .await
                .status(),
            200
        );
        let refresh = w.refresh(&id).await;
        assert_eq!(refresh.status(), 409);
        assert_eq!(error_code(refresh).await, "connection_not_active");
    }
    assert_eq!(w.events("&type=connection.revoked").await.len(), 2);
}

#[tokio::test]
async fn a_consent_expired_at_the_bank_expires_the_connection() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (_, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        let consent_id = w.session(&id).await.consent_id;
        w.sandbox.expire_consent(bank, &consent_id).unwrap();
        let response = w.refresh(&id).await;
        assert_eq!(response.status(), 409, "{bank}");
        assert_eq!(error_code(response).await, "consent_expired");
        assert_eq!(w.connection(&id).await["status"], "expired");
    }
    assert_eq!(w.events("&type=connection.expired").await.len(), 2);
}

#[tokio::test]
async fn a_consent_revoked_by_the_user_at_the_bank_ends_the_connection() {
    let w = world().await;
    let (_, id, _) = w.link("alice", "sonnenbank").await;
    w.synced(&id).await;
    let consent_id = w.session(&id).await.consent_id;
    w.sandbox.revoke_consent("sonnenbank", &consent_id).unwrap();
    let response = w.refresh(&id).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "consent_invalid");
    assert_eq!(w.connection(&id).await["status"], "revoked");
    let revoked = w.events("&type=connection.revoked").await;
    assert_eq!(revoked[0]["data"]["by"], "bank");
}

#[tokio::test]
async fn the_hub_enforces_its_own_validity_and_warns_before() {
    // The worker is sent 181 days ahead: event retention would take the events it checks.
    let w = world_with(http_settings(), test_api_settings(), |hub| {
        hub.retention.events_days = 3650;
    })
    .await;
    let (_, de, _) = w.link("alice", "sonnenbank").await;
    let (_, uk, _) = w.link("bob", "thames-bank").await;
    let de_conn = w.synced(&de).await;
    let uk_conn = w.synced(&uk).await;
    // 180 days under EU rules, 90 in the UK.
    let days = |c: &Value| {
        let until = Timestamp::parse_rfc3339(c["valid_until"].as_str().unwrap()).unwrap();
        (until.unix_seconds() - Timestamp::now().unix_seconds()) / 86_400
    };
    assert!((178..=180).contains(&days(&de_conn)), "{de_conn}");
    assert!((88..=90).contains(&days(&uk_conn)), "{uk_conn}");

    let worker =
        kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
    // A week before the UK consent lapses: the tenant is told, once.
    let near = Timestamp::now().plus_seconds(85 * 86_400);
    assert_eq!(worker.lifecycle(near).await.announced, 1);
    assert_eq!(worker.lifecycle(near).await.announced, 0);
    let expiring = w.events("&type=connection.expiring").await;
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0]["data"]["connection_id"], uk.as_str());

    // The user reconfirms (UK): another 90 days from now, and a new notice period.
    let response = w
        .app
        .post_json(
            &format!("/v1/connections/{uk}/reconfirm"),
            &w.token,
            &Value::Null,
        )
        .await;
    assert_eq!(response.status(), 200);
    // Reconfirmation is a UK rule only.
    let response = w
        .app
        .post_json(
            &format!("/v1/connections/{de}/reconfirm"),
            &w.token,
            &Value::Null,
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "reconfirmation_not_applicable");

    // Past 181 days, both consents have lapsed.
    let later = Timestamp::now().plus_seconds(181 * 86_400);
    assert_eq!(worker.lifecycle(later).await.expired, 2);
    assert_eq!(w.connection(&de).await["status"], "expired");
    assert_eq!(w.connection(&uk).await["status"], "expired");
    assert_eq!(w.events("&type=connection.expired").await.len(), 2);
    assert_eq!(w.events("&type=connection.reconfirmed").await.len(), 1);
}

#[tokio::test]
async fn links_nobody_finished_are_closed() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let created = w.create_connection(&user_id, None).await;
    let id = created["id"].as_str().unwrap();
    let worker =
        kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
    assert_eq!(worker.lifecycle(Timestamp::now()).await.abandoned, 0);
    let tomorrow = Timestamp::now().plus_seconds(86_400 + 60);
    assert_eq!(worker.lifecycle(tomorrow).await.abandoned, 1);
    let connection = w.connection(id).await;
    assert_eq!(connection["status"], "expired");
    assert_eq!(connection["failure_reason"], "link_expired");
    // The user who comes back late is sent to the tenant, not shown a dead end.
    let browser = w.browser();
    let page = browser
        .open(created["connect_url"].as_str().unwrap())
        .await
        .page();
    assert!(page.link("back").is_some(), "{}", page.body);
}

#[tokio::test]
async fn scheduled_syncs_run_from_the_worker() {
    let w = world().await;
    let (_, id, _) = w.link("alice", "sonnenbank").await;
    let first = w.synced(&id).await;
    let worker =
        kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
    let next = Timestamp::parse_rfc3339(first["next_sync_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        worker.sync_due(Timestamp::now()).await.synced,
        0,
        "nothing due yet"
    );
    let round = worker.sync_due(next.plus_seconds(1)).await;
    assert_eq!(round.synced, 1);
    let after = w.connection(&id).await;
    assert_ne!(after["last_synced_at"], first["last_synced_at"]);
}
