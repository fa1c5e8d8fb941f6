//! `kontor cells move` and `kontor cells moves`: an online move of a tenant's rows, or one
//! user's, to another cell of the same region (docs/OPERATIONS.md, "Moving a tenant or user
//! between cells"), and the journal of moves. The engine is `kontor_store_sql::moves`; this
//! resolves the subject and the source, runs the move to `done` (or resumes it), and reports.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kontor_domain::{TenantId, UserId};
use kontor_store_sql::moves::{
    MoveCell, MoveError, MoveOptions, MoveReport, MoveRequest, Mover, Subject,
};

use crate::config::Config;
use crate::wiring::Stores;

/// What `kontor cells move` was asked.
#[derive(Debug, Clone)]
pub struct MoveArgs {
    pub tenant: Option<String>,
    pub user: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub resume: Option<String>,
    pub abort: Option<String>,
    pub grace: u64,
    pub json: bool,
}

/// A refusal with its stable code, printed as such (and as JSON with `--json`).
#[derive(Debug)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refused {}

fn refused(code: &'static str, message: impl Into<String>) -> anyhow::Error {
    Refused {
        code,
        message: message.into(),
    }
    .into()
}

fn mover(stores: &Stores, phases: Arc<Mutex<Vec<(String, Instant)>>>) -> Mover {
    let cells = stores
        .cell_list
        .iter()
        .filter_map(|(id, cell)| {
            let keys = stores.key_list.iter().find(|(k, _)| k == id)?;
            Some(MoveCell {
                name: id.to_string(),
                cell: cell.as_ref().clone(),
                keys: keys.1.as_ref().clone(),
            })
        })
        .collect();
    let hook: kontor_store_sql::moves::FailureHook = Arc::new(move |step: &str| {
        if let Some(phase) = step.strip_prefix("phase:")
            && let Ok(mut seen) = phases.lock()
        {
            seen.push((phase.to_owned(), Instant::now()));
        }
        false
    });
    let options = MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    };
    Mover::new(stores.control.as_ref().clone(), cells, options)
}

pub async fn run(config: &Config, args: MoveArgs) -> anyhow::Result<()> {
    let json = args.json;
    let stores = Stores::open(config)?;
    let outcome = drive(&stores, args).await;
    stores.close().await;
    match outcome {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{report}")?;
            Ok(())
        }
        Err(err) => {
            if json {
                let (code, message) = match err.downcast_ref::<Refused>() {
                    Some(r) => (r.code, r.message.clone()),
                    None => ("internal_error", format!("{err:#}")),
                };
                let body = serde_json::json!({"error": {"code": code, "message": message}});
                writeln!(std::io::stdout().lock(), "{body}")?;
            }
            Err(err)
        }
    }
}

fn engine(err: MoveError) -> anyhow::Error {
    refused(err.code(), err.to_string())
}

async fn drive(stores: &Stores, args: MoveArgs) -> anyhow::Result<String> {
    let phases = Arc::new(Mutex::new(Vec::new()));
    let mover = mover(stores, phases.clone());
    let started = Instant::now();
    let report = match (&args.resume, &args.abort) {
        (_, Some(id)) => mover.abort(id).await.map_err(engine)?,
        (Some(id), None) => {
            if args.tenant.is_some() || args.user.is_some() || args.to.is_some() {
                return Err(refused(
                    "invalid_arguments",
                    "--resume takes no --tenant, --user or --to",
                ));
            }
            mover.resume(id).await.map_err(engine)?
        }
        (None, None) => {
            let request = request(&mover, &args).await?;
            mover.start(&request).await.map_err(engine)?
        }
    };
    let record = stores.control.cell_move(&report.id).await.map_err(engine)?;
    let seen = phases.lock().map(|p| p.clone()).unwrap_or_default();
    Ok(render(&report, &record, &seen, started, args.json))
}

async fn request(mover: &Mover, args: &MoveArgs) -> anyhow::Result<MoveRequest> {
    let Some(to) = args.to.clone() else {
        return Err(refused("invalid_arguments", "--to CELL is required"));
    };
    let subject = match (&args.tenant, &args.user) {
        (Some(tenant), None) => Subject::Tenant(
            TenantId::parse(tenant)
                .map_err(|e| refused("invalid_id", format!("--tenant {tenant:?}: {e}")))?,
        ),
        (None, Some(user)) => {
            let user = UserId::parse(user)
                .map_err(|e| refused("invalid_id", format!("--user {user:?}: {e}")))?;
            let Some((tenant, _)) = mover
                .user_tenant(&user)
                .await
                .context("looking the user up")?
            else {
                return Err(refused(
                    "move_subject_not_found",
                    format!("no cell holds the user {user}"),
                ));
            };
            Subject::User { tenant, user }
        }
        _ => {
            return Err(refused(
                "invalid_arguments",
                "give exactly one of --tenant and --user (or --resume MOVE_ID)",
            ));
        }
    };
    let from = match &args.from {
        Some(from) => from.clone(),
        None => {
            let holding = mover
                .cells_holding(&subject)
                .await
                .context("looking for the cells holding the rows")?;
            match holding.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(refused(
                        "move_subject_not_found",
                        "no cell holds rows of this tenant or user",
                    ));
                }
                many => {
                    return Err(refused(
                        "move_source_ambiguous",
                        format!(
                            "cells {} hold rows of it; name the source with --from",
                            many.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    Ok(MoveRequest {
        subject,
        from,
        to,
        grace: Duration::from_secs(args.grace),
    })
}

fn render(
    report: &MoveReport,
    record: &kontor_store_sql::moves::MoveRecord,
    seen: &[(String, Instant)],
    started: Instant,
    json: bool,
) -> String {
    let end = Instant::now();
    let phases: Vec<serde_json::Value> = seen
        .iter()
        .enumerate()
        .map(|(i, (phase, at))| {
            let until = seen.get(i + 1).map_or(end, |(_, next)| *next);
            serde_json::json!({"phase": phase, "ms": millis(until.duration_since(*at))})
        })
        .collect();
    let tables: Vec<serde_json::Value> = report
        .tables
        .iter()
        .map(|t| {
            serde_json::json!({
                "table": t.table,
                "source_rows": t.source_rows,
                "target_rows": t.target_rows,
                "source_hash": t.source_hash,
                "target_hash": t.target_hash,
                "equal": t.matches(),
            })
        })
        .collect();
    let (subject, tenant, user) = match &record.subject {
        Subject::Tenant(t) => ("tenant", t.to_string(), None),
        Subject::User { tenant, user } => ("user", tenant.to_string(), Some(user.to_string())),
    };
    let body = serde_json::json!({
        "move_id": report.id,
        "subject": subject,
        "tenant": tenant,
        "user": user,
        "from": record.from_cell,
        "to": record.to_cell,
        "phase": report.phase.as_str(),
        "phases": phases,
        "passes": report.passes.iter().map(|p| serde_json::json!({
            "upserted": p.upserted, "deleted": p.deleted, "deferred": p.deferred,
        })).collect::<Vec<_>>(),
        "write_pause_ms": report.pause.map(millis),
        "freeze_steps": report.freeze_steps.iter().map(|(step, d)| serde_json::json!({
            "step": step, "ms": millis(*d),
        })).collect::<Vec<_>>(),
        "keys_copied": report.keys_copied,
        "verified": tables,
        "verification": record
            .verification
            .as_deref()
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok()),
        "source_rows_deleted": report.source_rows_deleted,
        "ms": millis(end.duration_since(started)),
    });
    if json {
        return body.to_string();
    }
    let mut text = format!(
        "move {} of {subject} {} from {} to {}: {}",
        report.id,
        user.as_deref().unwrap_or(&tenant),
        record.from_cell,
        record.to_cell,
        report.phase.as_str()
    );
    if let Some(pause) = report.pause {
        text.push_str(&format!("; writes paused {} ms", millis(pause)));
    }
    for t in &report.tables {
        text.push_str(&format!(
            "\n  {:<28} {:>9} rows  {}",
            t.table,
            t.target_rows,
            if t.matches() { "equal" } else { "DIFFERENT" }
        ));
    }
    text
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// `kontor cells moves`: the journal.
pub async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = Stores::open(config)?;
    let moves = stores.control.cell_moves().await;
    stores.close().await;
    let moves = moves.context("reading the journal of moves")?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = moves
            .iter()
            .map(|m| {
                serde_json::json!({
                    "move_id": m.id,
                    "tenant": m.subject.tenant().to_string(),
                    "user": m.subject.user().map(ToString::to_string),
                    "from": m.from_cell,
                    "to": m.to_cell,
                    "phase": m.phase.as_str(),
                    "last_error": m.last_error,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        writeln!(
            out,
            "{:<24} {:<12} {:<8} {:<8} subject",
            "move", "phase", "from", "to"
        )?;
        for m in &moves {
            let subject = match &m.subject {
                Subject::Tenant(t) => format!("tenant {t}"),
                Subject::User { user, .. } => format!("user {user}"),
            };
            writeln!(
                out,
                "{:<24} {:<12} {:<8} {:<8} {subject}",
                m.id,
                m.phase.as_str(),
                m.from_cell,
                m.to_cell
            )?;
        }
    }
    Ok(())
}
