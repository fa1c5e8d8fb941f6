//! The killer: SIGKILLs the hub at random moments and restarts it at once on the same port,
//! configuration and data, until told to stop; then hands back a running hub. It also notices a
//! hub that died on its own (which it reports and restarts).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::hub::Hub;

/// How to start the hub again.
#[derive(Debug, Clone)]
pub struct HubRecipe {
    pub kontor: PathBuf,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    pub port: u16,
}

impl HubRecipe {
    /// Starts a life of the hub, retrying while the port is still held by the last one.
    pub async fn start(&self) -> anyhow::Result<Hub> {
        let mut last = None;
        for _ in 0..20 {
            match Hub::start_on(&self.kontor, &self.env, &self.log, self.port).await {
                Ok(hub) => return Ok(hub),
                Err(err) => {
                    last = Some(err);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        match last {
            Some(err) => Err(err.context("the hub did not come back after 20 attempts")),
            None => bail!("the hub did not start"),
        }
    }
}

/// When to kill.
#[derive(Debug, Clone, Copy)]
pub struct KillPlan {
    /// Each life lasts a random time between these after the hub is ready.
    pub min: Duration,
    pub max: Duration,
    /// Stop killing after this many kills (`None`: until told to stop).
    pub max_kills: Option<u32>,
    pub seed: u64,
}

/// What the killer did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KillerStats {
    pub kills: u32,
    /// Milliseconds since the start of the run at which each kill happened.
    pub kill_at_ms: Vec<u64>,
    /// How long each restart took, from the kill to `/readyz` answering 200.
    pub restart_ms: Vec<u64>,
    /// Lives that ended without our SIGKILL: (ms since start, exit status).
    pub unexpected_exits: Vec<(u64, String)>,
}

/// The killer task. Aborted (and with it the hub it holds, killed on drop) if dropped.
#[derive(Debug)]
pub struct Killer {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<(Hub, KillerStats)>>>,
}

impl Killer {
    pub fn spawn(hub: Hub, recipe: Arc<HubRecipe>, plan: KillPlan, t0: Instant) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(hub, recipe, plan, t0, stopped));
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stops killing; returns the running hub and what happened.
    pub async fn finish(mut self) -> anyhow::Result<(Hub, KillerStats)> {
        let _ = self.stop.send(true);
        let task = self
            .task
            .take()
            .context("the killer was already finished")?;
        task.await.context("the killer task failed")?
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn ms_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn run(
    mut hub: Hub,
    recipe: Arc<HubRecipe>,
    plan: KillPlan,
    t0: Instant,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<(Hub, KillerStats)> {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x6b69_6c6c);
    let mut stats = KillerStats::default();
    loop {
        if plan.max_kills.is_some_and(|max| stats.kills >= max) {
            // Done killing: keep watching for deaths of its own until told to stop.
            let _ = stopped.wait_for(|s| *s).await;
            return Ok((hub, stats));
        }
        let life = rng.random_range(plan.min..=plan.max);
        let until = Instant::now() + life;
        // Sleep through the life, watching for a stop and for the hub dying on its own.
        loop {
            if *stopped.borrow() {
                return Ok((hub, stats));
            }
            if let Some(status) = hub.exited()? {
                stats
                    .unexpected_exits
                    .push((ms_since(t0), status.to_string()));
                hub = recipe.start().await?;
                continue;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            let nap = (until - now).min(Duration::from_millis(50));
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                _ = stopped.changed() => {}
            }
        }
        let killed_at = Instant::now();
        hub.kill().await?;
        stats.kills += 1;
        stats.kill_at_ms.push(ms_since(t0));
        hub = recipe.start().await?;
        stats
            .restart_ms
            .push(u64::try_from(killed_at.elapsed().as_millis()).unwrap_or(u64::MAX));
    }
}
