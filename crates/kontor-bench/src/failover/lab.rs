//! The ha-lab scripts (`ops/ha-lab/`), run with `--json` and read back: the lab is started,
//! its primary killed or switched over, its nodes restarted, by the same commands an operator
//! uses.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the scripts are and which lab directory they work on.
#[derive(Debug, Clone)]
pub struct Lab {
    scripts: PathBuf,
    dir: Option<PathBuf>,
}

/// `ops/ha-lab` under the current directory, else in the source tree this program was built
/// from.
pub fn default_scripts() -> PathBuf {
    let here = Path::new("ops/ha-lab");
    if here.join("up").is_file() {
        return here.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/ha-lab")
}

impl Lab {
    pub fn new(scripts: PathBuf, dir: Option<PathBuf>) -> anyhow::Result<Self> {
        if !scripts.join("up").is_file() {
            bail!(
                "no ha-lab scripts in {} (pass --ha-lab DIR, the folder of ops/ha-lab/up)",
                scripts.display()
            );
        }
        Ok(Self { scripts, dir })
    }

    /// Runs `ops/ha-lab/<script> [--dir D] --json ARGS…` and parses its one JSON object.
    pub async fn run(&self, script: &str, args: &[&str]) -> anyhow::Result<Value> {
        let mut command = tokio::process::Command::new(self.scripts.join(script));
        if let Some(dir) = &self.dir {
            command.arg("--dir").arg(dir);
        }
        command.arg("--json").args(args).stdin(Stdio::null());
        let output = command
            .output()
            .await
            .with_context(|| format!("running ops/ha-lab/{script}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "ops/ha-lab/{script} {} failed ({}): {}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                stdout.trim()
            );
        }
        serde_json::from_str(&stdout).with_context(|| {
            format!(
                "ops/ha-lab/{script} printed no JSON object: {}",
                stdout.trim()
            )
        })
    }

    /// `up`: starts what is not running, waits until healthy; the primary's URL and whether it
    /// was up already.
    pub async fn up(&self) -> anyhow::Result<(String, bool)> {
        let up = self.run("up", &[]).await?;
        let url = up["primary_url"]
            .as_str()
            .context("ops/ha-lab/up printed no primary_url")?
            .to_owned();
        Ok((url, up["already_up"].as_bool().unwrap_or(false)))
    }

    /// `status`: the leader and the other members' names.
    pub async fn members(&self) -> anyhow::Result<(String, Vec<String>)> {
        let status = self.run("status", &[]).await?;
        let leader = status["leader"]
            .as_str()
            .context("ops/ha-lab/status names no leader")?
            .to_owned();
        let others = status["members"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m["name"].as_str())
            .filter(|name| *name != leader)
            .map(str::to_owned)
            .collect();
        Ok((leader, others))
    }

    pub async fn down(&self) -> anyhow::Result<()> {
        let mut command = tokio::process::Command::new(self.scripts.join("down"));
        if let Some(dir) = &self.dir {
            command.arg("--dir").arg(dir);
        }
        let status = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .await
            .context("running ops/ha-lab/down")?;
        if !status.success() {
            bail!("ops/ha-lab/down failed ({status})");
        }
        Ok(())
    }
}

/// A number from a script's JSON (`null` or missing: none).
pub fn number(value: &Value, field: &str) -> Option<u64> {
    value[field].as_u64()
}

/// A name from a script's JSON.
pub fn text(value: &Value, field: &str) -> Option<String> {
    value[field].as_str().map(str::to_owned)
}
