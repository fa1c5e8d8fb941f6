//! A worker killed in the middle of an attempt loses nothing: its lease lapses, another worker
//! sends the delivery again with the same webhook-id, and the receiver can drop the repeat.

use std::time::Duration;

use kontor_service::HubSettings;
use kontor_test_support::TestApp;

use super::receiver::{Receiver, Reply};
use super::{hooks_on, local};

fn short_leases(settings: &mut HubSettings) {
    local(settings);
    settings.webhooks.lease_seconds = 2;
    settings.webhooks.timeout = Duration::from_secs(5);
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_nothing() {
    let h = hooks_on(TestApp::builder().hub_settings(short_leases).spawn().await).await;
    let receiver = Receiver::start().await;
    // The first request is never answered: the worker sending it is killed meanwhile.
    receiver.set_rule(|_, seen| {
        if seen == 0 {
            Reply::Hang
        } else {
            Reply::Status(204)
        }
    });
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("uk").await;
    let event = h.record(&user, 1).await;

    let doomed = h.deliverer();
    let killed = tokio::spawn(async move { doomed.run_once().await });
    receiver.wait_received(1, Duration::from_secs(5)).await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());

    // Its lease still holds: another worker does not send the delivery at the same time.
    let survivor = h.deliverer();
    assert!(survivor.run_once().await.is_empty());
    assert_eq!(receiver.received().len(), 1);

    // Once the lease lapsed (the hub's clock moved past it), the delivery goes out again,
    // unchanged.
    h.app.clock.advance(Duration::from_secs(3));
    let reports = survivor.run_once().await;
    assert_eq!(reports.len(), 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, event.to_string());
    assert_eq!(got[1].id, event.to_string(), "the same webhook-id");
    assert_eq!(got[0].body, got[1].body, "the same body");
    assert!(got[1].delivered());
    let log = h.deliveries(endpoint["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["state"], "succeeded");
    assert_eq!(
        log[0]["attempts"].as_array().unwrap().len(),
        1,
        "the killed attempt left no record; the delivery did not depend on it"
    );
}

#[tokio::test]
async fn events_recorded_while_no_worker_runs_are_delivered_later() {
    let h = hooks_on(TestApp::builder().hub_settings(local).spawn().await).await;
    let receiver = Receiver::start().await;
    h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("de").await;
    for n in 0..3 {
        h.record(&user, n).await;
    }
    // A worker that dies after reading the outbox but before writing deliveries changes nothing:
    // the events stay undispatched.
    let cell = h.app.hub.cell(user.cell()).unwrap();
    assert_eq!(cell.undispatched_events(10).await.unwrap().len(), 3);
    h.deliverer().run_once().await;
    let got = receiver.wait_delivered(3, Duration::from_secs(5)).await;
    let ns: Vec<_> = got.iter().map(|r| r.json["data"]["n"].clone()).collect();
    assert_eq!(ns, vec![0, 1, 2]);
    assert!(cell.undispatched_events(10).await.unwrap().is_empty());
}
