//! `kontor sandbox-bank`: the command-line front of the sandbox.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use time::OffsetDateTime;

use crate::builder::{DEFAULT_SEED, SandboxBank};
use crate::config::Standard;
use crate::core::dates::{parse_date, parse_uk_query_datetime};
use crate::tpp::SandboxPki;
use crate::tpp::pki::files;

/// Options of `kontor sandbox-bank`.
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on. Use port 0 for a free port (the URLs printed at start tell which).
    #[arg(
        long,
        env = "KONTOR_SANDBOX_LISTEN",
        default_value = "127.0.0.1:8090",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// TOML file defining more banks (`[[bank]]` tables; `include_default_banks = false` to
    /// drop the built-in Sonnenbank, Banque Lumière and Thames Bank).
    #[arg(long, env = "KONTOR_SANDBOX_BANKS", value_name = "FILE")]
    pub banks: Option<PathBuf>,

    /// Seed of the generated data: the same seed gives the same transactions, ids and faults.
    #[arg(long, env = "KONTOR_SANDBOX_SEED", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Simulated start instant (`2026-03-01` or `2026-03-01T09:00:00Z`); default: now.
    /// Generated history covers the 24 months before it.
    #[arg(long, env = "KONTOR_SANDBOX_START", value_name = "DATE|DATETIME")]
    pub start: Option<String>,

    /// Keep the simulated clock still unless advanced through `POST /admin/clock/advance`
    /// (by default it also follows wall time).
    #[arg(long, env = "KONTOR_SANDBOX_FREEZE_CLOCK")]
    pub freeze_clock: bool,

    /// URL clients use to reach the sandbox, when not `http://<listen address>` (proxies,
    /// containers). Links and redirects are built from it.
    #[arg(long, env = "KONTOR_SANDBOX_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Print one JSON object line at start (admin URL and every bank's endpoints and
    /// credentials) instead of one `<bank-id> <standard> <base-url>` line per bank.
    #[arg(long, env = "KONTOR_SANDBOX_JSON")]
    pub json: bool,

    /// Strict mode: serve HTTPS, demand a TPP client certificate chained to the sandbox's TPP
    /// CA with the PSD2 role of the service, and verify Berlin Group request signatures and UK
    /// FAPI client authentication, request objects and `x-jws-signature`s.
    #[arg(long, env = "KONTOR_SANDBOX_REQUIRE_TPP_CERTIFICATES")]
    pub require_tpp_certificates: bool,

    /// Strict mode: where the CAs, the sandbox's signing key and the demo TPP's certificates
    /// are kept as PEM files (existing files are used, missing ones generated)
    /// [default: ./sandbox-pki].
    #[arg(long, env = "KONTOR_SANDBOX_PKI_DIR", value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,

    /// Strict mode: more host names or IP addresses for the HTTPS certificate (comma-separated
    /// or repeated), besides localhost, the listen address and the public URL's host.
    #[arg(
        long = "tls-name",
        env = "KONTOR_SANDBOX_TLS_NAMES",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub tls_names: Vec<String>,

    /// Keep the state (consents, authorisations, tokens, payments, the clock) in this JSON file
    /// so that a restart goes on where the sandbox stopped [default: in memory only].
    #[arg(long, env = "KONTOR_SANDBOX_STATE_FILE", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
}

/// The PKI directory when `--pki-dir` is not given.
pub const DEFAULT_PKI_DIR: &str = "sandbox-pki";

fn parse_start(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Some(date) = parse_date(text) {
        return Ok(date.midnight().assume_utc());
    }
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(at.to_offset(time::UtcOffset::UTC));
    }
    parse_uk_query_datetime(text)
        .with_context(|| format!("--start `{text}` is neither a date nor an RFC 3339 date-time"))
}

/// Strict mode's files and the demo TPP, for the start line.
fn pki_json(running: &crate::RunningSandbox) -> serde_json::Value {
    let Some(pki) = running.pki() else {
        return serde_json::Value::Null;
    };
    let dir = pki
        .dir()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let file = |name: &str| dir.join(name).display().to_string();
    let demo = pki.demo_tpp().map(|demo| {
        json!({
            "info": demo.info,
            "qwac_cert": file(files::DEMO_QWAC),
            "qwac_key": file(files::DEMO_QWAC_KEY),
            "qseal_cert": file(files::DEMO_QSEAL),
            "qseal_key": file(files::DEMO_QSEAL_KEY),
            "info_file": file(files::DEMO_INFO),
        })
    });
    json!({
        "dir": dir.display().to_string(),
        "server_ca": file(files::SERVER_CA),
        "tpp_ca": file(files::TPP_CA),
        "tpp_ca_key": pki.tpp_ca_key_pkcs8().map(|_| file(files::TPP_CA_KEY)),
        "demo_tpp": demo,
    })
}

/// Writes the start lines (kept out of `run` so no stdout lock lives across an await).
fn print_banks(running: &crate::RunningSandbox, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut line = json!({ "url": running.url(), "admin_url": running.admin_url(), "banks": running.banks() });
        if running.pki().is_some() {
            line["pki"] = pki_json(running);
        }
        writeln!(out, "{line}")?;
    } else {
        for bank in running.banks() {
            let standard = match bank.standard {
                Standard::BerlinGroup => "berlin-group",
                Standard::UkOpenBanking => "uk-open-banking",
            };
            writeln!(out, "{} {standard} {}", bank.id, bank.base_url)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Runs the sandbox until `shutdown` resolves. At start it prints, on stdout, one line per bank:
/// `<bank-id> <standard> <base-url>` (or, with `--json`, one JSON object line).
pub async fn run(
    args: SandboxArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut builder = SandboxBank::builder()
        .seed(args.seed)
        .frozen_clock(args.freeze_clock);
    if let Some(file) = &args.state_file {
        builder = builder.state_file(file.clone());
    }
    if let Some(path) = &args.banks {
        builder = builder
            .banks_file(path)
            .with_context(|| format!("loading banks from {}", path.display()))?;
    }
    if let Some(start) = &args.start {
        builder = builder.start_time(parse_start(start)?);
    }
    if let Some(url) = &args.public_url {
        builder = builder.public_url(url.clone());
    }
    if args.require_tpp_certificates {
        let dir = args
            .pki_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PKI_DIR));
        let shown = dir.display().to_string();
        // Key generation is CPU work (RSA primes): keep it off the runtime's threads.
        let pki = tokio::task::spawn_blocking(move || SandboxPki::load_or_generate(&dir))
            .await
            .context("generating the test PKI")?
            .with_context(|| format!("setting up the test PKI in {shown}"))?;
        tracing::info!(pki_dir = %shown, "strict mode: TPP certificates and signatures required");
        builder = builder
            .require_tpp_certificates(pki)
            .tls_names(args.tls_names.clone());
    }
    let running = builder
        .start(args.listen)
        .await
        .with_context(|| format!("starting the sandbox on {}", args.listen))?;
    print_banks(&running, args.json)?;
    tracing::info!(url = running.url(), admin = %running.admin_url(), seed = args.seed, "sandbox bank serving");
    shutdown.await;
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn defaults_and_start_parsing() {
        let cli = Cli::parse_from(["test"]);
        assert_eq!(cli.args.listen, "127.0.0.1:8090".parse().unwrap());
        assert_eq!(cli.args.seed, DEFAULT_SEED);
        assert_eq!(
            parse_start("2026-03-01").unwrap(),
            time::macros::datetime!(2026-03-01 0:00 UTC)
        );
        assert_eq!(
            parse_start("2026-03-01T09:30:00+01:00").unwrap(),
            time::macros::datetime!(2026-03-01 8:30 UTC)
        );
        assert!(parse_start("soon").is_err());
        assert!(!cli.args.require_tpp_certificates);
    }

    #[tokio::test]
    async fn strict_mode_sets_up_its_pki_directory() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let cli = Cli::parse_from([
            "test",
            "--listen",
            "127.0.0.1:0",
            "--require-tpp-certificates",
            "--pki-dir",
            pki.to_str().unwrap(),
            "--tls-name",
            "sandbox.test,10.0.0.7",
        ]);
        assert_eq!(cli.args.tls_names, ["sandbox.test", "10.0.0.7"]);
        // Serve and stop at once: what matters is what start-up left behind.
        run(cli.args, async {}).await.unwrap();
        for file in [
            files::SERVER_CA,
            files::TPP_CA,
            files::SIGNING_KEY,
            files::DEMO_QWAC,
            files::DEMO_QSEAL,
            files::DEMO_INFO,
        ] {
            assert!(pki.join(file).exists(), "{file}");
        }
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(pki.join(files::DEMO_INFO)).unwrap())
                .unwrap();
        assert!(
            info["uk_clients"][0]["token_url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
    }
}
