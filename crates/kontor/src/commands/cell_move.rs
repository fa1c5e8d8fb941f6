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
    MoveCell, MoveError, MoveOptions, MovePhase, MoveRecord, MoveReport, MoveRequest, Mover,
    Subject, TableCheck,
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
    /// More for `--json` (a failed move's `move_id` and differing tables).
    pub detail: Option<serde_json::Map<String, serde_json::Value>>,
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
        detail: None,
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
                writeln!(std::io::stdout().lock(), "{}", error_json(&err))?;
            }
            Err(err)
        }
    }
}

/// `{"error": {"code", "message", …}}`: what `--json` prints when the command fails.
fn error_json(err: &anyhow::Error) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    match err.downcast_ref::<Refused>() {
        Some(r) => {
            body.insert("code".into(), r.code.into());
            body.insert("message".into(), r.message.clone().into());
            body.extend(r.detail.clone().unwrap_or_default());
        }
        None => {
            body.insert("code".into(), "internal_error".into());
            body.insert("message".into(), format!("{err:#}").into());
        }
    }
    serde_json::json!({ "error": body })
}

fn engine(err: &MoveError) -> anyhow::Error {
    let detail = match err {
        MoveError::VerificationFailed { move_id, tables } => {
            let mut detail = serde_json::Map::new();
            detail.insert("move_id".into(), move_id.clone().into());
            detail.insert("phase".into(), "failed".into());
            detail.insert(
                "differing".into(),
                tables.iter().map(|t| t.table).collect::<Vec<_>>().into(),
            );
            detail.insert(
                "tables".into(),
                tables.iter().map(TableCheck::json).collect(),
            );
            Some(detail)
        }
        _ => None,
    };
    Refused {
        code: err.code(),
        message: err.to_string(),
        detail,
    }
    .into()
}

async fn drive(stores: &Stores, args: MoveArgs) -> anyhow::Result<String> {
    let phases = Arc::new(Mutex::new(Vec::new()));
    let mover = mover(stores, phases.clone());
    let started = Instant::now();
    let report = match (&args.resume, &args.abort) {
        (_, Some(id)) => mover.abort(id).await.map_err(|e| engine(&e))?,
        (Some(id), None) => {
            if args.tenant.is_some() || args.user.is_some() || args.to.is_some() {
                return Err(refused(
                    "invalid_arguments",
                    "--resume takes no --tenant, --user or --to",
                ));
            }
            mover.resume(id).await.map_err(|e| engine(&e))?
        }
        (None, None) => {
            let request = request(&mover, &args).await?;
            mover.start(&request).await.map_err(|e| engine(&e))?
        }
    };
    let record = stores
        .control
        .cell_move(&report.id)
        .await
        .map_err(|e| engine(&e))?;
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
    let tables: Vec<serde_json::Value> = report.tables.iter().map(TableCheck::json).collect();
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The tables a failed move found different.
fn differing(m: &MoveRecord) -> Vec<&'static str> {
    m.differing_tables().iter().map(|t| t.table).collect()
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
                    "finished": m.finished_at.is_some(),
                    "differing": differing(m),
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
            let mut phase = m.phase.as_str().to_owned();
            if m.phase == MovePhase::Failed && m.finished_at.is_none() {
                phase.push_str(" (undoing)");
            }
            write!(
                out,
                "{:<24} {:<12} {:<8} {:<8} {subject}",
                m.id, phase, m.from_cell, m.to_cell
            )?;
            let differing = differing(m);
            if !differing.is_empty() {
                write!(out, "  differing: {}", differing.join(", "))?;
            }
            if let Some(error) = m.last_error.as_deref().filter(|_| !m.phase.is_finished()) {
                write!(out, "  last error: {error}")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_move_names_its_differing_tables_in_json() {
        let err = engine(&MoveError::VerificationFailed {
            move_id: "mov_1".into(),
            tables: vec![TableCheck {
                table: "transactions",
                source_rows: 10,
                target_rows: 10,
                source_hash: "aa".into(),
                target_hash: "bb".into(),
            }],
        });
        let body = error_json(&err);
        let error = &body["error"];
        assert_eq!(error["code"], "move_verification_failed");
        assert_eq!(error["move_id"], "mov_1");
        assert_eq!(error["phase"], "failed");
        assert_eq!(error["differing"], serde_json::json!(["transactions"]));
        assert_eq!(error["tables"][0]["equal"], false);
        assert_eq!(error["tables"][0]["source_hash"], "aa");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("transactions") && m.contains("undone")),
            "{body}"
        );
    }

    #[test]
    fn a_refusal_without_detail_is_code_and_message() {
        let body = error_json(&refused("move_to_same_cell", "same"));
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "move_to_same_cell", "message": "same"}})
        );
    }
}
