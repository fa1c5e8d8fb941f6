//! Deliveries about one user arrive in the order their events were recorded: a later one waits
//! until the earlier one got through (or was given up), even when that takes a retry — while
//! other users' deliveries go ahead.

use std::collections::HashMap;
use std::time::Duration;

use super::receiver::{Receiver, Reply};
use super::{hooks, spawn_worker};

#[tokio::test]
async fn deliveries_for_one_user_are_sent_in_order() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    h.endpoint(&receiver.url(), &["*"]).await;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    let mut stumbling = String::new();
    let mut first_user = String::new();
    for u in 0..4 {
        let user = h.user(if u % 2 == 0 { "uk" } else { "de" }).await;
        for n in 0..5 {
            let id = h.record(&user, n).await.to_string();
            if u == 0 && n == 1 {
                stumbling = id.clone();
                first_user = user.to_string();
            }
            expected.entry(user.to_string()).or_default().push(id);
        }
    }
    // The second event of the first user fails twice before it gets through.
    let stumble = stumbling.clone();
    receiver.set_rule(move |r, seen| {
        if r.id == stumble && seen < 2 {
            Reply::Status(503)
        } else {
            Reply::Slow(Duration::from_millis(5))
        }
    });
    let (stop, worker) = spawn_worker(&h.app);
    receiver.wait_delivered(20, Duration::from_secs(20)).await;
    stop.send(true).unwrap();
    worker.await.unwrap();

    let received = receiver.received();
    for (user, ids) in &expected {
        // In arrival order, this user's requests walk their events in order; a failed one is
        // repeated before anything later is sent.
        let arrivals: Vec<&str> = received
            .iter()
            .filter(|r| &r.user() == user)
            .map(|r| r.id.as_str())
            .collect();
        let mut walked: Vec<&str> = arrivals.clone();
        walked.dedup();
        assert_eq!(
            walked,
            ids.iter().map(String::as_str).collect::<Vec<_>>(),
            "{user}"
        );
        let delivered: Vec<&str> = received
            .iter()
            .filter(|r| &r.user() == user && r.delivered())
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(delivered, walked, "{user}: each delivered once, in order");
    }
    assert_eq!(
        received.iter().filter(|r| r.id == stumbling).count(),
        3,
        "two failures and the success"
    );
    let (per_id, per_user) = receiver.max_concurrency();
    assert_eq!(
        (per_id, per_user),
        (1, 1),
        "one request per user in flight at a time"
    );
    // Other users did not wait for the stumbling one.
    let first_success = received
        .iter()
        .position(|r| r.id == stumbling && r.delivered())
        .unwrap();
    let others_before = received[..first_success]
        .iter()
        .filter(|r| r.delivered() && r.user() != first_user)
        .count();
    assert!(
        others_before > 0,
        "other users went ahead during the retries"
    );
}
