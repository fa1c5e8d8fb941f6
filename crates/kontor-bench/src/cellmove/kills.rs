//! `kontor-bench move --kills N`: the `kontor cells move` process SIGKILLed N times at moments
//! spread across the move's phases, each time carried on with `kontor cells move --resume`, and
//! at the end resumed until the journal says `done`. The kill moments: kill i aims at a phase of
//! [`AIMS`] (spread evenly over the kills, in phase order); the bench watches the journal
//! (`cell_moves` in the control database, where the engine records each phase before its step)
//! and, once the phase (or a later one) shows, waits a random time up to `--kill-jitter-ms` and
//! kills. Which phase the journal held when the process died is what the report shows.

use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use super::{MoveRun, World};
use crate::hub::kontor_command;
use crate::journal::now_ms;

/// The phases kills aim at, in order; `verified` lasts one control transaction, so the slot of
/// the switch aims at `switched` (the grace period) and a kill that lands in `verified` is luck.
pub const AIMS: [&str; 5] = ["copying", "catching_up", "frozen", "switched", "cleaning"];

/// The journal's phases in the order a move goes through them.
const ORDER: [&str; 8] = [
    "planned",
    "copying",
    "catching_up",
    "frozen",
    "verified",
    "switched",
    "cleaning",
    "done",
];

/// How often the journal is read while waiting for an aimed phase.
const POLL: Duration = Duration::from_millis(5);

/// How many `--resume` runs may end in an error before the bench gives up on the move.
const RESUME_ATTEMPTS: u32 = 5;

/// One SIGKILL of `kontor cells move`.
#[derive(Debug, Clone, Serialize)]
pub struct Kill {
    /// The phase the kill aimed at.
    pub aimed: &'static str,
    /// The journal's phase just before the kill and just after the process died.
    pub phase_before: String,
    pub phase: String,
    /// Ms after the first `kontor cells move` started.
    pub at_ms: u64,
    /// Ms from seeing the aimed phase (or a later one) in the journal to the kill.
    pub waited_ms: u64,
    /// Which run of `kontor cells move` was killed (1: the start, then the resumes).
    pub run: u32,
    /// False when the process had ended on its own before the signal.
    pub landed: bool,
}

/// What the killed move came to.
#[derive(Debug)]
pub struct KilledMove {
    /// The final `kontor cells move --resume --json` (the run that ended `done`).
    pub last: MoveRun,
    pub kills: Vec<Kill>,
    /// Processes of `kontor cells move` started (killed ones, resumes, the last one).
    pub runs: u32,
    /// `--resume` runs that ended in an error (then run again).
    pub failed_resumes: Vec<String>,
}

/// The aims of `n` kills: [`AIMS`] spread evenly, in phase order.
pub fn aims(n: u16) -> Vec<&'static str> {
    let n = usize::from(n);
    (0..n).map(|i| AIMS[i * AIMS.len() / n]).collect()
}

fn rank(phase: &str) -> usize {
    ORDER.iter().position(|p| *p == phase).unwrap_or(0)
}

/// The tenant's latest move in the journal: id and phase.
async fn latest(conn: &mut PgConnection, tenant: &str) -> anyhow::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT id, phase FROM cell_moves WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(conn)
    .await
    .context("reading the journal of moves")
}

/// Pause of the writes as the journal holds it, across every run: `frozen_at` (the phase
/// `frozen` recorded, just before the source's fence) to `switched_at`, ms.
pub async fn journal_pause_ms(world: &World<'_>, move_id: &str) -> anyhow::Result<Option<f64>> {
    let mut conn = PgConnection::connect(&world.control)
        .await
        .context("connecting to the control database")?;
    let row: Option<(Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT frozen_at, switched_at FROM cell_moves WHERE id = $1")
            .bind(move_id)
            .fetch_optional(&mut conn)
            .await
            .context("reading the move's journal entry")?;
    let _ = conn.close().await;
    Ok(match row {
        Some((Some(frozen), Some(switched))) => Some(micros_to_ms(switched - frozen)),
        _ => None,
    })
}

#[expect(
    clippy::cast_precision_loss,
    clippy::float_arithmetic,
    reason = "microseconds to ms for people"
)]
fn micros_to_ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// Runs the move of `tenant` to de-2, killing it as `aims` say, then resumes it to `done`.
pub async fn killed_move(
    world: &World<'_>,
    tenant: &str,
    aims: &[&'static str],
) -> anyhow::Result<KilledMove> {
    let args = world.args;
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x6b69_6c6c);
    let mut journal = PgConnection::connect(&world.control)
        .await
        .context("connecting to the control database")?;
    let grace = args.grace.to_string();
    let start_ms = now_ms();
    let mut move_id: Option<String> = None;
    let mut kills = Vec::new();
    let mut runs = 0u32;
    for aim in aims {
        let mut command = kontor_command(world.kontor, &world.env);
        command.args(["cells", "move"]);
        match &move_id {
            None => command.args(["--tenant", tenant, "--to", "de-2", "--grace", &grace]),
            Some(id) => command.args(["--resume", id]),
        };
        let stderr = tempfile::tempfile().context("a file for the move's stderr")?;
        let mut child = command
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                stderr.try_clone().context("the move's stderr file")?,
            ))
            .spawn()
            .context("starting kontor cells move")?;
        runs += 1;
        // Until the journal shows the aimed phase or a later one, or the process ends.
        let seen = loop {
            if let Some(status) = child.try_wait().context("waiting for kontor cells move")? {
                break Err(status);
            }
            if let Some((id, phase)) = latest(&mut journal, tenant).await? {
                move_id.get_or_insert(id);
                if rank(&phase) >= rank(aim) {
                    break Ok(now_ms());
                }
            }
            tokio::time::sleep(POLL).await;
        };
        let seen_ms = match seen {
            Ok(at) => at,
            Err(status) => {
                let phase = latest(&mut journal, tenant).await?.map(|(_, p)| p);
                if move_id.is_none() || !status.success() {
                    bail!(
                        "kontor cells move ended ({status}) before the kill aimed at {aim}, journal phase {phase:?}: {}",
                        tail_of(stderr)
                    );
                }
                eprintln!(
                    "kontor-bench move: the move ended ({status}, phase {phase:?}) before the kill aimed at {aim}"
                );
                break;
            }
        };
        let jitter = rng.random_range(0..=args.kill_jitter_ms);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let before = latest(&mut journal, tenant)
            .await?
            .map(|(_, p)| p)
            .unwrap_or_default();
        let killed_at = now_ms();
        // SIGKILL (tokio's `start_kill`), unless it has ended already.
        let _ = child.start_kill();
        let status = child.wait().await.context("waiting for the killed move")?;
        let after = latest(&mut journal, tenant)
            .await?
            .map(|(_, p)| p)
            .unwrap_or_default();
        let landed = status.signal() == Some(9);
        eprintln!(
            "kontor-bench move: kill {} aimed at {aim}: {} in phase {after} (journal before: {before}), {} ms into the move",
            kills.len() + 1,
            if landed {
                "killed"
            } else {
                "the process had ended"
            },
            killed_at.saturating_sub(start_ms)
        );
        kills.push(Kill {
            aimed: aim,
            phase_before: before,
            phase: after.clone(),
            at_ms: killed_at.saturating_sub(start_ms),
            waited_ms: killed_at.saturating_sub(seen_ms),
            run: runs,
            landed,
        });
        if after == "done" {
            break;
        }
    }
    let _ = journal.close().await;
    let Some(id) = move_id else {
        bail!("no move of the tenant appeared in the journal");
    };
    // `--resume` until done; a finished move is reported as it is.
    let mut failed_resumes = Vec::new();
    loop {
        runs += 1;
        let mut last = super::run_move_with(world, &["--resume", &id]).await?;
        last.start_ms = start_ms;
        if last.body["phase"] == "done" {
            return Ok(KilledMove {
                last,
                kills,
                runs,
                failed_resumes,
            });
        }
        failed_resumes.push(format!("{}: {} {}", last.status, last.body, last.stderr));
        if u32::try_from(failed_resumes.len()).unwrap_or(u32::MAX) >= RESUME_ATTEMPTS {
            return Ok(KilledMove {
                last,
                kills,
                runs,
                failed_resumes,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The last lines of a process's stderr file.
fn tail_of(mut file: std::fs::File) -> String {
    use std::io::{Read as _, Seek as _};
    let mut text = String::new();
    if file.rewind().is_ok() {
        let _ = file.read_to_string(&mut text);
    }
    text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use super::{AIMS, aims, rank};

    #[test]
    fn kills_spread_over_the_phases_in_order() {
        assert_eq!(aims(5), AIMS.to_vec());
        assert_eq!(aims(1), vec!["copying"]);
        assert_eq!(
            aims(3),
            vec!["copying", "catching_up", "switched"],
            "one kill a slot, evenly"
        );
        let ten = aims(10);
        assert_eq!(ten.len(), 10);
        for phase in AIMS {
            assert_eq!(ten.iter().filter(|p| **p == phase).count(), 2, "{phase}");
        }
        assert!(ten.windows(2).all(|w| rank(w[0]) <= rank(w[1])));
        assert!(aims(0).is_empty());
    }
}
