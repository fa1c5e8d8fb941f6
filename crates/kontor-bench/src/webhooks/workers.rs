//! `kontor worker` processes: started together with the benchmark's configuration, stopped with
//! SIGTERM (killed if they do not stop), their logs kept for the report.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Child;

use crate::hub::{self, LogSummary};

const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct Workers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Workers {
    pub fn start(
        kontor: &Path,
        env: &[(String, String)],
        count: usize,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut children = Vec::new();
        let mut logs = Vec::new();
        for n in 0..count {
            let log = dir.join(format!("worker-{n}.log"));
            let out = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let err = out.try_clone().context("sharing the worker log")?;
            let child = hub::kontor_command(kontor, env)
                .arg("worker")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {} worker", kontor.display()))?;
            children.push(child);
            logs.push(log);
        }
        Ok(Self { children, logs })
    }

    /// Whether any worker has exited already (it should not have).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (child, log) in self.children.iter_mut().zip(&self.logs) {
            if let Some(status) = child.try_wait().context("watching a worker")? {
                anyhow::bail!("a kontor worker exited ({status}):\n{}", hub::tail(log, 20));
            }
        }
        Ok(())
    }

    /// SIGTERM to every worker, then waits (SIGKILL after a while); returns their logs' summary.
    pub async fn stop(mut self) -> anyhow::Result<LogSummary> {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let pid = i32::try_from(pid).context("a worker's pid does not fit an i32")?;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                child.kill().await.context("killing a worker")?;
            }
        }
        let mut summary = LogSummary::default();
        for log in &self.logs {
            let one = hub::summarize_log(log);
            summary.lines += one.lines;
            for (level, n) in one.levels {
                *summary.levels.entry(level).or_default() += n;
            }
            for (message, n) in one.messages {
                *summary.messages.entry(message).or_default() += n;
            }
        }
        Ok(summary)
    }
}
