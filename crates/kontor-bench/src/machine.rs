//! Facts about the machine a run measured, and where its CPU time went during each phase (read
//! from Linux's `/proc`; elsewhere the CPU split is simply left out).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

/// Linux reports process and system CPU time in USER_HZ ticks, which is 100 per second on every
/// architecture Linux supports today.
const TICKS_PER_SECOND: u64 = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs this process may use (what `nproc` prints).
    pub nproc: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub postgres_version: String,
    pub kontor_version: String,
    /// The 1, 5 and 15 minute load averages when the run started (`/proc/loadavg`): how busy
    /// the machine was with other work.
    pub load_average: String,
}

impl Machine {
    pub fn describe(postgres_version: &str, kontor_version: &str) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(format!("{} GiB", kib / 1024 / 1024))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
        Self {
            nproc: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu_model,
            memory,
            kernel,
            postgres_version: postgres_version.to_owned(),
            kontor_version: kontor_version.to_owned(),
            load_average: load_average(),
        }
    }

    /// The report's paragraph about the machine; `shared_by` says which processes share its
    /// CPUs.
    pub fn markdown_line(&self, shared_by: &str) -> String {
        format!(
            "Machine: {} CPUs (`nproc`), shared by {shared_by}; {}; {}; Linux {}; load average \
             {} at the start. PostgreSQL {}. {}.\n\n",
            self.nproc,
            self.cpu_model,
            self.memory,
            self.kernel,
            self.load_average,
            self.postgres_version,
            self.kontor_version
        )
    }
}

/// The 1, 5 and 15 minute load averages now, as `/proc/loadavg` gives them (`unknown` where it
/// is missing).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The resident set size of a process in KiB (`VmRSS` in `/proc/<pid>/status`); `None` where
/// `/proc` cannot tell.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU seconds spent during a window, split by who spent them, in hundredths of a second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuUse {
    /// Every CPU of the machine together, busy (not idle or waiting for I/O).
    pub busy_ticks: u64,
    /// Every CPU together, idle or waiting for I/O.
    pub idle_ticks: u64,
    /// This process: the load generator (and the sqlx baseline's client side).
    pub loader_ticks: u64,
    /// The hub under test.
    pub hub_ticks: u64,
    /// PostgreSQL backends of this run's databases and the server's background processes.
    pub postgres_ticks: u64,
    /// Kernel interrupt work no process is charged for (loopback TCP runs partly here).
    pub interrupt_ticks: u64,
    /// Every other process that ran meanwhile (other PostgreSQL clients, builds, …).
    pub other_ticks: u64,
}

impl CpuUse {
    /// Two windows together.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            busy_ticks: self.busy_ticks + other.busy_ticks,
            idle_ticks: self.idle_ticks + other.idle_ticks,
            loader_ticks: self.loader_ticks + other.loader_ticks,
            hub_ticks: self.hub_ticks + other.hub_ticks,
            postgres_ticks: self.postgres_ticks + other.postgres_ticks,
            interrupt_ticks: self.interrupt_ticks + other.interrupt_ticks,
            other_ticks: self.other_ticks + other.other_ticks,
        }
    }
}

/// CPU seconds of the hub, PostgreSQL, this tool and everything else, as `a / b / c / d` (a
/// dash where `/proc` could not tell).
pub fn cpu_split(cpu: Option<&CpuUse>) -> String {
    cpu.map_or_else(
        || "—".to_owned(),
        |c| {
            format!(
                "{} / {} / {} / {}",
                seconds(c.hub_ticks),
                seconds(c.postgres_ticks),
                seconds(c.loader_ticks),
                seconds(c.other_ticks)
            )
        },
    )
}

/// Formats ticks as seconds with two decimals, without floating point.
pub fn seconds(ticks: u64) -> String {
    format!(
        "{}.{:02}",
        ticks / TICKS_PER_SECOND,
        ticks % TICKS_PER_SECOND
    )
}

/// Which processes to account for: this one, the hub, and PostgreSQL.
#[derive(Debug, Clone)]
pub struct CpuProbe {
    hub: Option<u32>,
    /// The prefix of this run's database names; backends serving other databases are "other".
    database_prefix: String,
}

/// A reading of the counters at one instant.
#[derive(Debug, Clone)]
pub struct CpuSample {
    busy: u64,
    idle: u64,
    interrupt: u64,
    loader: u64,
    hub: u64,
    /// pid → ticks, for this run's PostgreSQL processes.
    postgres: HashMap<u32, u64>,
}

impl CpuProbe {
    pub fn new(hub: Option<u32>, database_prefix: &str) -> Self {
        Self {
            hub,
            database_prefix: database_prefix.to_owned(),
        }
    }

    /// `None` when `/proc` is not there to read.
    pub fn sample(&self) -> Option<CpuSample> {
        let (busy, idle, interrupt) = system_ticks()?;
        let loader = process_ticks(std::process::id()).unwrap_or(0);
        let hub = self.hub.and_then(process_ticks).unwrap_or(0);
        let mut postgres = HashMap::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if self.is_ours(&entry.path())
                && let Some(ticks) = process_ticks(pid)
            {
                postgres.insert(pid, ticks);
            }
        }
        Some(CpuSample {
            busy,
            idle,
            interrupt,
            loader,
            hub,
            postgres,
        })
    }

    /// A PostgreSQL process serving this run: a backend of one of its databases, or one of the
    /// server's background processes (WAL writer, checkpointer, …) that every database shares.
    fn is_ours(&self, proc_dir: &Path) -> bool {
        let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            return false;
        }
        let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let is_backend = cmdline.contains('(') || cmdline.contains("[local]");
        cmdline.contains(&self.database_prefix) || !is_backend
    }
}

impl CpuSample {
    /// What was spent between `earlier` and this sample. Processes that started in between count
    /// from zero; those that ended in between are lost (the pools keep their connections open,
    /// so none should).
    pub fn since(&self, earlier: &Self) -> CpuUse {
        let busy = self.busy.saturating_sub(earlier.busy);
        let loader = self.loader.saturating_sub(earlier.loader);
        let hub = self.hub.saturating_sub(earlier.hub);
        let interrupt = self.interrupt.saturating_sub(earlier.interrupt);
        let postgres = self
            .postgres
            .iter()
            .map(|(pid, ticks)| {
                ticks.saturating_sub(earlier.postgres.get(pid).copied().unwrap_or(0))
            })
            .sum::<u64>();
        CpuUse {
            busy_ticks: busy,
            idle_ticks: self.idle.saturating_sub(earlier.idle),
            loader_ticks: loader,
            hub_ticks: hub,
            postgres_ticks: postgres,
            interrupt_ticks: interrupt,
            other_ticks: busy.saturating_sub(loader + hub + postgres + interrupt),
        }
    }
}

/// Busy, idle and interrupt ticks of all CPUs together, from the first line of `/proc/stat`.
fn system_ticks() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    let idle = field(3) + field(4);
    let interrupt = field(5) + field(6);
    Some((busy, idle, interrupt))
}

/// User plus system ticks of one process (all its threads), from `/proc/<pid>/stat`.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
