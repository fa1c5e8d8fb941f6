//! The webhook loops of a worker. A dispatcher turns new events into deliveries, looking at the
//! outbox every `webhooks.poll_interval` (at once again after a full batch); a sender keeps up to
//! `webhooks.concurrency` attempts in flight, claiming due deliveries as attempts finish, when
//! the dispatcher made new ones, and at every poll interval. They run beside the other jobs, so a
//! slow endpoint never delays a sync, and stop taking work on shutdown, letting attempts in flight
//! finish (each is bounded by the attempt timeout).

use std::sync::Arc;
use std::time::Duration;

use kontor_domain::Clock;
use kontor_service::{Deliverer, Hub};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub(crate) async fn run(hub: Hub, shutdown: watch::Receiver<bool>) {
    let settings = hub.settings().webhooks.clone();
    let clock = hub.clock().clone();
    let deliverer = match Deliverer::new(hub) {
        Ok(deliverer) => deliverer,
        Err(err) => {
            tracing::error!(error = %err, "webhook delivery cannot start");
            return;
        }
    };
    let poll = settings.poll_interval.max(Duration::from_millis(10));
    let fresh = Arc::new(Notify::new());
    let dispatcher = tokio::spawn(dispatch(
        deliverer.clone(),
        clock.clone(),
        poll,
        settings.dispatch_batch,
        fresh.clone(),
        shutdown.clone(),
    ));
    send(
        deliverer,
        &clock,
        poll,
        settings.concurrency.max(1),
        &fresh,
        shutdown,
    )
    .await;
    if let Err(err) = dispatcher.await {
        tracing::error!(error = %err, "the webhook dispatcher panicked");
    }
}

async fn dispatch(
    deliverer: Deliverer,
    clock: Clock,
    poll: Duration,
    batch: usize,
    fresh: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let dispatched = deliverer.dispatch(clock.now()).await;
        if dispatched > 0 {
            fresh.notify_one();
        }
        // A full batch means more may be waiting: look again right away.
        if dispatched >= batch {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn send(
    deliverer: Deliverer,
    clock: &Clock,
    poll: Duration,
    concurrency: usize,
    fresh: &Notify,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut in_flight = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let room = concurrency.saturating_sub(in_flight.len());
        let mut found = false;
        if room > 0 {
            let jobs = deliverer.claim(room, clock.now()).await;
            found = !jobs.is_empty();
            for job in jobs {
                let deliverer = deliverer.clone();
                in_flight.spawn(async move { deliverer.run(job).await });
            }
        }
        while let Some(done) = in_flight.try_join_next() {
            log_outcome(done);
        }
        let full = in_flight.len() >= concurrency;
        if found && !full {
            continue;
        }
        tokio::select! {
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => log_outcome(done),
            () = fresh.notified(), if !full => {}
            () = tokio::time::sleep(poll), if !full => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    while let Some(done) = in_flight.join_next().await {
        log_outcome(done);
    }
}

fn log_outcome(
    done: Result<
        kontor_service::ServiceResult<kontor_service::webhooks::AttemptReport>,
        tokio::task::JoinError,
    >,
) {
    match done {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            // The lease lapses and the delivery is attempted again.
            tracing::warn!(error = %err, "a webhook attempt could not be recorded");
        }
        Err(err) => tracing::error!(error = %err, "a webhook attempt panicked"),
    }
}
