//! The webhook loops of a worker. A dispatcher turns new events into deliveries, looking at the
//! outbox every `webhooks.poll_interval` (at once again after a full batch); a sender keeps up to
//! `webhooks.concurrency` attempts in flight, claiming due deliveries as attempts finish, when
//! the dispatcher made new ones, and at every poll interval. They run beside the other jobs, so a
//! slow endpoint never delays a sync, and stop taking work on shutdown, letting attempts in flight
//! finish (each is bounded by the attempt timeout).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use kontor_domain::Clock;
use kontor_service::webhooks::Job;
use kontor_service::{Deliverer, Hub};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

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

/// Keeps up to `concurrency` attempts in flight and, beside them, up to half as many claimed
/// deliveries ready to start: a claim runs while attempts are in flight (one at a time), so an
/// attempt that ends frees a slot that is filled at once, without waiting for a claim's round
/// trips. A claim is for at least a quarter of `concurrency`. A claim is made when an attempt ended or a claim found work (the next event of a
/// user becomes due when the attempt before it is recorded), when the dispatcher made new
/// deliveries, and at every poll interval. A ready delivery whose lease would not outlast its
/// attempt is dropped (its lease lapses and it is claimed again), never sent late.
async fn send(
    deliverer: Deliverer,
    clock: &Clock,
    poll: Duration,
    concurrency: usize,
    fresh: &Notify,
    mut shutdown: watch::Receiver<bool>,
) {
    let ahead = (concurrency / 2).max(1);
    // A claim costs a statement per cell and a read of the endpoints whatever its size: claims
    // are made for a quarter of the concurrency at least, not for every slot that frees.
    let batch = (concurrency / 4).max(1);
    let mut in_flight = JoinSet::new();
    let mut ready: VecDeque<Job> = VecDeque::new();
    let mut claiming: Option<JoinHandle<Vec<Job>>> = None;
    // Whether to claim before the next event: false after a claim that found nothing.
    let mut look = true;
    loop {
        if *shutdown.borrow() {
            break;
        }
        while in_flight.len() < concurrency
            && let Some(job) = ready.pop_front()
        {
            start(&deliverer, clock, &mut in_flight, job);
        }
        let held = in_flight.len() + ready.len();
        if look && claiming.is_none() && held + batch <= concurrency + ahead {
            let (deliverer, now) = (deliverer.clone(), clock.now());
            let want = concurrency + ahead - held;
            claiming = Some(tokio::spawn(
                async move { deliverer.claim(want, now).await },
            ));
        }
        tokio::select! {
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                log_outcome(done);
                look = true;
            }
            claimed = async {
                match claiming.as_mut() {
                    Some(claim) => claim.await,
                    None => std::future::pending().await,
                }
            }, if claiming.is_some() => {
                claiming = None;
                match claimed {
                    Ok(jobs) => {
                        look = !jobs.is_empty();
                        ready.extend(jobs);
                    }
                    Err(err) => tracing::error!(error = %err, "a webhook claim panicked"),
                }
            }
            () = fresh.notified() => look = true,
            () = tokio::time::sleep(poll), if !look => look = true,
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    // Claimed deliveries are attempted too (their leases would otherwise hold their queues
    // until they lapse), then every attempt is awaited.
    if let Some(claim) = claiming
        && let Ok(jobs) = claim.await
    {
        ready.extend(jobs);
    }
    for job in ready {
        start(&deliverer, clock, &mut in_flight, job);
    }
    while let Some(done) = in_flight.join_next().await {
        log_outcome(done);
    }
}

type Attempts = JoinSet<kontor_service::ServiceResult<kontor_service::webhooks::AttemptReport>>;

/// Starts attempting a claimed delivery, unless its lease would lapse before the attempt ended.
fn start(deliverer: &Deliverer, clock: &Clock, in_flight: &mut Attempts, job: Job) {
    if deliverer.lease_outlasts_attempt(&job, clock.now()) {
        let deliverer = deliverer.clone();
        in_flight.spawn(async move { deliverer.run(job).await });
    } else {
        tracing::info!(
            ?job,
            "a claimed webhook delivery waited too long; its lease is left to lapse"
        );
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
