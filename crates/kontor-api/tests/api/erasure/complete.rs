//! `DELETE /v1/users/{id}` end to end, on SQLite and PostgreSQL: the consents revoked at both
//! sandbox banks by the worker, the user's events gone from `GET /v1/events` and refused for
//! redelivery like unknown ones, a replay of their Idempotency-Key answered like an unknown key;
//! an erasure a crash left recorded is resumed by the worker; an unreachable bank is retried and
//! finally reported.

use kontor_banks::{ConsentOutcome, ConsentSession};
use kontor_domain::bank::BankId;
use kontor_domain::time::Timestamp;
use kontor_domain::{TenantId, UserId};
use kontor_sandbox_bank::FaultConfig;
use kontor_test_support::Backend;
use kontor_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};

use crate::payments::{body, post};
use crate::support::{World, world_on};

async fn at_bank(w: &World, bank: &str, consent_id: &str) -> ConsentOutcome {
    let connector = w
        .app
        .hub
        .directory()
        .connector(&BankId::parse(bank).unwrap(), &w.tenant_id)
        .unwrap();
    let mut probe = ConsentSession {
        consent_id: consent_id.to_owned(),
        ..ConsentSession::default()
    };
    connector.consent_status(&mut probe).await.unwrap()
}

fn worker(w: &World) -> Worker {
    Worker::new(w.app.hub.clone(), WorkerSettings::default())
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn erasure_story(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    for (username, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (user, connection, _) = w.link(username, bank).await;
        w.synced(&connection).await;
        let consent_id = w.session(&connection).await.consent_id;
        assert!(matches!(
            at_bank(&w, bank, &consent_id).await,
            ConsentOutcome::Active { .. }
        ));
        let key = format!("pay-{username}");
        let payment = body(&user, bank, "12.34");
        assert_eq!(post(&w, Some(&key), &payment).await.status(), 201);
        let events = w.events(&format!("&user_id={user}")).await;
        assert!(events.len() >= 2, "{events:?}");
        let event_id = events[0]["id"].as_str().unwrap().to_owned();
        let redeliver = format!("/v1/events/{event_id}/redeliver");
        let before = w.app.post_json(&redeliver, &w.token, &json!({})).await;
        assert_eq!(
            before.status(),
            409,
            "the event exists, no endpoint wants it"
        );

        let erased = w.app.delete(&format!("/v1/users/{user}"), &w.token).await;
        assert_eq!(erased.status(), 204);

        // Nothing about the user is listable or redeliverable.
        assert!(w.events(&format!("&user_id={user}")).await.is_empty());
        let (status, refused) =
            answer(w.app.post_json(&redeliver, &w.token, &json!({})).await).await;
        let (unknown_status, unknown) = answer(
            w.app
                .post_json(
                    &format!(
                        "/v1/events/evt_{}_00000000000000000000000000/redeliver",
                        crate::support::region_of(username)
                    ),
                    &w.token,
                    &json!({}),
                )
                .await,
        )
        .await;
        assert_eq!((status, unknown_status), (404, 404));
        assert_eq!(refused["error"]["code"], unknown["error"]["code"]);

        // A replay of the erased user's key is answered like a key never seen.
        let (replay_status, replay) = answer(post(&w, Some(&key), &payment).await).await;
        let (fresh_status, fresh) =
            answer(post(&w, Some(&format!("{key}-fresh")), &payment).await).await;
        assert_eq!(replay_status, fresh_status, "{replay} vs {fresh}");
        assert_eq!(replay["error"]["code"], fresh["error"]["code"]);
        assert_eq!(replay_status, 404);
        let keys: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE idempotency_key = $1")
                .bind(&key)
                .fetch_one(&w.app.stores.raw_control_pool())
                .await
                .unwrap();
        assert_eq!(keys, 0);

        // The worker revokes the consent at the bank and tells the tenant.
        let round = worker(&w).erasures(Timestamp::now()).await;
        assert_eq!((round.revoked, round.completed), (1, 1), "{round:?}");
        assert!(matches!(
            at_bank(&w, bank, &consent_id).await,
            ConsentOutcome::Revoked
        ));
        let done = w.events("&type=user.erasure_completed").await;
        let done = done
            .iter()
            .find(|e| e["data"]["user_id"] == user.as_str())
            .unwrap();
        assert_eq!(done["data"]["consents_revoked"], 1);
        assert_eq!(done["data"]["consents_not_revoked"], 0);
        assert!(done["user_id"].is_null());
        let marker = w.events("&type=user.erased").await;
        let marker = marker
            .iter()
            .find(|e| e["data"]["user_id"] == user.as_str())
            .unwrap();
        assert!(marker["user_id"].is_null());
        assert_eq!(marker["data"].as_object().unwrap().len(), 1, "{marker}");
        assert_eq!(
            worker(&w).erasures(Timestamp::now()).await,
            Default::default()
        );
    }
}

#[tokio::test]
async fn erasure_revokes_consents_and_purges_events_and_keys_on_sqlite() {
    erasure_story(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn erasure_revokes_consents_and_purges_events_and_keys_on_postgres() {
    erasure_story(
        Backend::Postgres,
        "api::erasure::erasure_revokes_consents_and_purges_events_and_keys_on_postgres",
    )
    .await;
}

async fn resumed_story(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    let (user, connection, _) = w.link("bob", "thames-bank").await;
    w.synced(&connection).await;
    let consent_id = w.session(&connection).await.consent_id;
    let id = UserId::parse(&user).unwrap();
    let tenant: TenantId = w.tenant_id.clone();

    // The request recorded the erasure and died before deleting anything.
    w.app.hub.record_erasure(&tenant, &id).await.unwrap();
    assert_eq!(
        w.app
            .get(&format!("/v1/users/{user}"), &w.token)
            .await
            .status(),
        200
    );
    // Not before a live request's time is up.
    assert_eq!(worker(&w).erasures(Timestamp::now()).await.resumed, 0);
    let later = Timestamp::now().plus_seconds(120);
    let round = worker(&w).erasures(later).await;
    assert_eq!(
        (round.resumed, round.revoked, round.completed),
        (1, 1, 1),
        "{round:?}"
    );
    assert_eq!(
        w.app
            .get(&format!("/v1/users/{user}"), &w.token)
            .await
            .status(),
        404
    );
    assert!(w.events(&format!("&user_id={user}")).await.is_empty());
    assert!(matches!(
        at_bank(&w, "thames-bank", &consent_id).await,
        ConsentOutcome::Revoked
    ));
    // A DELETE after it is a 404: the user is gone.
    assert_eq!(
        w.app
            .delete(&format!("/v1/users/{user}"), &w.token)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn an_interrupted_erasure_is_resumed_by_the_worker_on_sqlite() {
    resumed_story(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn an_interrupted_erasure_is_resumed_by_the_worker_on_postgres() {
    resumed_story(
        Backend::Postgres,
        "api::erasure::an_interrupted_erasure_is_resumed_by_the_worker_on_postgres",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_bank_is_retried_then_reported() {
    let w = world_on(Backend::Sqlite, "sqlite").await.unwrap();
    let (user, connection, _) = w.link("alice", "sonnenbank").await;
    w.synced(&connection).await;
    let consent_id = w.session(&connection).await.consent_id;
    w.sandbox
        .set_faults(
            "sonnenbank",
            FaultConfig {
                error_percent: 100,
                error_status: Some(503),
                path_contains: Some("/consents".into()),
                ..FaultConfig::default()
            },
        )
        .unwrap();
    assert_eq!(
        w.app
            .delete(&format!("/v1/users/{user}"), &w.token)
            .await
            .status(),
        204
    );
    let mut now = Timestamp::now();
    let first = worker(&w).erasures(now).await;
    assert_eq!((first.retried, first.revoked), (1, 0), "{first:?}");
    // Not due again before its backoff.
    assert_eq!(worker(&w).erasures(now).await.retried, 0);

    // The bank answers again: the next attempt revokes.
    w.sandbox.clear_faults("sonnenbank").unwrap();
    now = now.plus_seconds(6 * 3600);
    let second = worker(&w).erasures(now).await;
    assert_eq!((second.revoked, second.completed), (1, 1), "{second:?}");
    assert!(matches!(
        at_bank(&w, "sonnenbank", &consent_id).await,
        ConsentOutcome::Revoked
    ));

    // Another user whose bank never answers: given up after the last attempt, and reported.
    let (user, connection, _) = w.link("alice", "sonnenbank").await;
    w.synced(&connection).await;
    w.sandbox
        .set_faults(
            "sonnenbank",
            FaultConfig {
                error_percent: 100,
                error_status: Some(503),
                path_contains: Some("/consents".into()),
                ..FaultConfig::default()
            },
        )
        .unwrap();
    assert_eq!(
        w.app
            .delete(&format!("/v1/users/{user}"), &w.token)
            .await
            .status(),
        204
    );
    let mut failed = 0;
    for _ in 0..kontor_service::REVOCATION_ATTEMPTS {
        now = now.plus_seconds(7 * 3600);
        failed += worker(&w).erasures(now).await.failed;
    }
    assert_eq!(failed, 1);
    let reported = w.events("&type=user.consent_revocation_failed").await;
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0]["data"]["user_id"], user.as_str());
    assert_eq!(reported[0]["data"]["connection_id"], connection.as_str());
    assert_eq!(reported[0]["data"]["code"], "bank_unavailable");
    assert_eq!(
        reported[0]["data"]["attempts"],
        kontor_service::REVOCATION_ATTEMPTS
    );
    let done = w.events("&type=user.erasure_completed").await;
    let done = done
        .iter()
        .find(|e| e["data"]["user_id"] == user.as_str())
        .unwrap();
    assert_eq!(done["data"]["consents_not_revoked"], 1);
}

#[tokio::test]
async fn the_worker_deletes_events_past_their_retention() {
    let w = world_on(Backend::Sqlite, "sqlite").await.unwrap();
    let (user, connection, _) = w.link("alice", "sonnenbank").await;
    w.synced(&connection).await;
    let held = w.events(&format!("&user_id={user}")).await.len();
    assert!(held >= 2, "{held}");
    // The clock moves instead of rows being aged: 89 days on, everything is kept.
    let day = 86_400;
    let kept = worker(&w)
        .lifecycle(Timestamp::now().plus_seconds(89 * day))
        .await;
    assert_eq!(kept.events_purged, 0);
    assert_eq!(w.events(&format!("&user_id={user}")).await.len(), held);
    let purged = worker(&w)
        .lifecycle(Timestamp::now().plus_seconds(91 * day))
        .await;
    assert_eq!(purged.events_purged, u64::try_from(held).unwrap());
    assert!(w.events(&format!("&user_id={user}")).await.is_empty());
}
