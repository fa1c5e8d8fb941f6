//! The command line: `kontor <command>`. Every command takes `--config FILE`; every setting also
//! has a `KONTOR_…` environment variable (see `kontor config print`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogConfig, Overrides};
use crate::{commands, telemetry};

#[derive(Debug, Parser)]
#[command(name = "kontor", version, about = "Kontor: a self-hosted open banking hub", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML configuration file; values in it override the defaults, and KONTOR_… environment
    /// variables override it.
    #[arg(long, global = true, env = "KONTOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where SQLite databases and generated keys live when not configured otherwise
    /// [default: ./kontor-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (with SQLite under --data-dir when no databases are configured).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Run the hub and the sandbox bank together on SQLite, with a demo tenant and a connect
    /// link to open in a browser.
    Demo(commands::demo::DemoArgs),
    /// Run the background jobs (scheduled syncs, consent expiry and notices, payment progress,
    /// webhook delivery) without the API.
    Worker,
    /// Apply pending database migrations to the control database and every cell.
    Migrate {
        /// Print one JSON object: database name → versions applied now (with `--plan`: the
        /// migrations that would run, each `{version, description}`).
        #[arg(long)]
        json: bool,
        /// Only show which migrations would run on which database; change nothing.
        #[arg(long)]
        plan: bool,
    },
    /// Back up every database of a SQLite deployment into one file, online and consistent
    /// (PostgreSQL databases are backed up with pgBackRest: see ops/backup).
    Backup {
        /// The archive to write (a gzip-compressed tar with a manifest and checksums).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Back up the regions' key stores instead of the data (keep these briefly: an erased
        /// user's key lives on in them until they are deleted).
        #[arg(long)]
        key_stores: bool,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
        /// Print one JSON object: the file, its size and each database's checksum and rows.
        #[arg(long)]
        json: bool,
    },
    /// Restore a `kontor backup` archive into the data directory (--data-dir), after checking
    /// all of it.
    Restore {
        /// The archive written by `kontor backup`.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// A newer control database (a copy of the live one) whose erasure ledger the restore
        /// keeps, so that users erased after the backup stay erased.
        #[arg(long, value_name = "CONTROL_DB")]
        ledger_from: Option<PathBuf>,
        /// Replace the databases of a data directory that is not empty (stop the hub first).
        #[arg(long)]
        force: bool,
        /// Print one JSON object: where each database went and its rows.
        #[arg(long)]
        json: bool,
    },
    /// Manage tenants (the fintech apps using this hub).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// The cells: where users live, several per region.
    #[command(subcommand)]
    Cells(CellsCommand),
    /// Manage a tenant's API clients (OAuth2 client credentials).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The erasure ledger: erased users, re-erased after a restore.
    #[command(subcommand)]
    Erasure(ErasureCommand),
    /// Inspect the configured banks.
    #[command(subcommand)]
    Banks(BanksCommand),
    /// Check where data lives and that what should be sealed is.
    #[command(subcommand)]
    Residency(ResidencyCommand),
    /// Run the sandbox bank: simulated Berlin Group and UK Open Banking banks for demos and
    /// tests (users alice, bob, carol; password "sandbox"; one-time code 123456).
    SandboxBank(kontor_sandbox_bank::SandboxArgs),
}

#[derive(Debug, Subcommand)]
pub enum BanksCommand {
    /// Read every bank's (and tenant registration's) client certificate and show its PSD2
    /// roles, competent authority, organisation identifier and expiry.
    Check {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant and its first API client; the client secret is shown once.
    Create {
        /// The tenant's display name, e.g. "Acme Budget".
        name: String,
        /// Print exactly one JSON object {"tenant_id", "client_id", "client_secret"}.
        #[arg(long)]
        json: bool,
    },
    /// List tenants (with the redirect URIs registered for them).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a tenant: the redirect URIs it may send its users back to, and how it looks on
    /// the hosted connect and payment pages.
    Update {
        /// The tenant's id (ten_…).
        tenant_id: String,
        /// Allow only these redirect URIs (repeat the option for several; replaces the list).
        /// Compared exactly after normalisation: scheme and host in lower case, no default
        /// port, "/" for an empty path; the query counts.
        #[arg(
            long = "redirect-uri",
            value_name = "URL",
            conflicts_with = "clear_redirect_uris"
        )]
        redirect_uris: Vec<String>,
        /// Remove the list: any https redirect URI is accepted again.
        #[arg(long)]
        clear_redirect_uris: bool,
        /// The name the hosted pages show instead of the tenant's name ("" removes it).
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// The tenant's logo on the hosted pages: an https:// URL ("" removes it). Users'
        /// browsers fetch it from that host, which the pages' Content-Security-Policy allows.
        #[arg(long, value_name = "URL")]
        logo_url: Option<String>,
        /// The pages' accent colour, as hex: #1f4fd6 or #14d ("" removes it).
        #[arg(long, value_name = "HEX")]
        accent_color: Option<String>,
        /// Print one JSON object {"tenant_id", "redirect_uris", "branding"}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create another API client for a tenant; the secret is shown once.
    Create {
        /// The tenant's id (ten_…).
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        /// Space-separated scopes [default: all].
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a client: no new tokens at once; its tokens stop working within
    /// auth.client_cache_seconds.
    Revoke {
        /// The client's id (cli_…).
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's clients, with the certificates each is bound to.
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Bind a client to a certificate (RFC 8705): from then on it gets tokens only over mutual
    /// TLS with a certificate it is bound to, and each token works only with that certificate.
    /// Bind several to overlap a rotation. Existing unbound tokens stop working within
    /// auth.client_cache_seconds.
    Bind {
        /// The client's id (cli_…).
        client_id: String,
        /// The client's certificate, PEM (its first certificate is bound).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "thumbprint",
            required_unless_present = "thumbprint"
        )]
        certificate: Option<PathBuf>,
        /// The certificate's SHA-256 thumbprint: hex as `openssl x509 -noout -fingerprint
        /// -sha256` prints it, or base64url (x5t#S256).
        #[arg(long)]
        thumbprint: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a certificate from a client; its tokens bound to it stop working within
    /// auth.client_cache_seconds. A client with no certificate left works as an unbound one.
    Unbind {
        /// The client's id (cli_…).
        client_id: String,
        /// The thumbprint, in either form `bind` takes.
        #[arg(long)]
        thumbprint: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ErasureCommand {
    /// Apply the erasure ledger to every cell and key store again: run after restoring a cell,
    /// a key store or the control database from a backup, so no erased user comes back.
    Replay {
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CellsCommand {
    /// Every configured cell: region, state, dedicated tenants, users, row counts of the big
    /// tables and bytes on disk. Reads only.
    List {
        /// Print one JSON array, a cell per element.
        #[arg(long)]
        json: bool,
    },
    /// Move a tenant's rows (or one user's) online to another cell of the same region: copy,
    /// catch up, pause the subject's writes briefly, verify per table, switch, clean up.
    /// Resumable after a crash with --resume.
    Move {
        /// The tenant to move (every row of it in the source cell).
        #[arg(long, conflicts_with_all = ["user", "resume"])]
        tenant: Option<String>,
        /// The user to move (their rows, connections, payments, events).
        #[arg(long, conflicts_with = "resume")]
        user: Option<String>,
        /// The target cell (e.g. de-2).
        #[arg(long, conflicts_with = "resume")]
        to: Option<String>,
        /// The source cell; by default the one cell holding the subject's rows.
        #[arg(long, conflicts_with = "resume")]
        from: Option<String>,
        /// Carry on a move from its recorded phase (after a crash or a refused step).
        #[arg(long, value_name = "MOVE_ID", conflicts_with = "abort")]
        resume: Option<String>,
        /// Abandon a move that has not switched: the target's copy is deleted, the fences
        /// lifted; only when no process is driving it.
        #[arg(long, value_name = "MOVE_ID", conflicts_with_all = ["tenant", "user", "to", "from"])]
        abort: Option<String>,
        /// Seconds every process is given to load the new routes before the source's rows are
        /// deleted; longer than the routes' refresh (1 s).
        #[arg(long, default_value_t = 10)]
        grace: u64,
        /// Print one JSON object: move id, phases with timings, the write pause, per-table
        /// verification.
        #[arg(long)]
        json: bool,
    },
    /// The journal of moves: id, phase, cells, subject.
    Moves {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResidencyCommand {
    /// Scan every cell and the control database (and a backup) for rows of another region,
    /// user-linked data in the control database, and plaintext where sealing is promised;
    /// exit non-zero on any finding.
    Check {
        /// Also scan this SQLite database file, or the database files in this folder (a backup).
        #[arg(value_name = "BACKUP")]
        backup: Option<PathBuf>,
        /// Print one JSON object: {"databases": n, "findings": [...]}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, with secrets and passwords masked.
    Print,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        let listen = match &self.command {
            Command::Serve { listen } => *listen,
            _ => None,
        };
        Overrides {
            data_dir: self.global.data_dir.clone(),
            listen,
        }
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let config = Config::load(self.global.config.as_deref(), &self.overrides())?;
        // Only the long-running processes export traces; one-off commands log only.
        let role = match &self.command {
            Command::Serve { .. } => Some("serve"),
            Command::Worker => Some("worker"),
            Command::Demo(_) => Some("demo"),
            _ => None,
        };
        let process = role.map(|role| telemetry::Process {
            role,
            regions: config
                .databases()
                .map(|dbs| {
                    let mut regions: Vec<String> =
                        dbs.cells.keys().map(|c| c.region().to_string()).collect();
                    regions.dedup();
                    regions
                })
                .unwrap_or_default(),
        });
        let mut log = config.log.clone();
        if matches!(self.command, Command::Demo(_)) && log.level == LogConfig::default().level {
            // The demo's terminal is for its links: warnings only, unless asked for more
            // (`RUST_LOG`, `KONTOR_LOG__LEVEL`).
            "warn".clone_into(&mut log.level);
        }
        let traces = telemetry::init(&log, &config.telemetry, process.as_ref())?;
        let result = self.command(config).await;
        // After the drain: what is still queued is exported before the process exits.
        traces.shutdown().await;
        result
    }

    async fn command(self, config: Config) -> anyhow::Result<()> {
        match self.command {
            Command::Serve { .. } => commands::serve::run(&config).await,
            Command::Worker => commands::worker::run(&config).await,
            Command::Demo(args) => commands::demo::run(&config, args).await,
            Command::Migrate { json, plan: false } => commands::migrate::run(&config, json).await,
            Command::Migrate { json, plan: true } => commands::migrate::plan(&config, json).await,
            Command::Backup {
                out,
                key_stores,
                force,
                json,
            } => commands::backup::backup(&config, &out, key_stores, force, json).await,
            Command::Restore {
                from,
                ledger_from,
                force,
                json,
            } => {
                commands::backup::restore(&config, &from, ledger_from.as_deref(), force, json).await
            }
            Command::Tenants(TenantsCommand::Create { name, json }) => {
                commands::tenants::create(&config, &name, json).await
            }
            Command::Tenants(TenantsCommand::List { json }) => {
                commands::tenants::list(&config, json).await
            }
            Command::Tenants(TenantsCommand::Update {
                tenant_id,
                redirect_uris,
                clear_redirect_uris,
                display_name,
                logo_url,
                accent_color,
                json,
            }) => {
                let change = commands::tenants::TenantUpdate {
                    redirect_uris,
                    clear_redirect_uris,
                    display_name,
                    logo_url,
                    accent_color,
                };
                commands::tenants::update(&config, &tenant_id, change, json).await
            }
            Command::Clients(ClientsCommand::Create {
                tenant,
                scopes,
                json,
            }) => commands::clients::create(&config, &tenant, scopes.as_deref(), json).await,
            Command::Clients(ClientsCommand::Revoke { client_id, json }) => {
                commands::clients::revoke(&config, &client_id, json).await
            }
            Command::Clients(ClientsCommand::List { tenant, json }) => {
                commands::clients::list(&config, &tenant, json).await
            }
            Command::Clients(ClientsCommand::Bind {
                client_id,
                certificate,
                thumbprint,
                json,
            }) => {
                let source = match (certificate, thumbprint) {
                    (Some(file), _) => commands::clients::CertificateSource::File(file),
                    (None, Some(raw)) => commands::clients::CertificateSource::Thumbprint(raw),
                    (None, None) => anyhow::bail!("give --certificate FILE or --thumbprint"),
                };
                commands::clients::bind(&config, &client_id, source, json).await
            }
            Command::Clients(ClientsCommand::Unbind {
                client_id,
                thumbprint,
                json,
            }) => commands::clients::unbind(&config, &client_id, &thumbprint, json).await,
            Command::Config(ConfigCommand::Print) => commands::config::print(&config),
            Command::Erasure(ErasureCommand::Replay { json }) => {
                commands::erasure::replay(&config, json).await
            }
            Command::Banks(BanksCommand::Check { json }) => commands::banks::check(&config, json),
            Command::Cells(CellsCommand::List { json }) => {
                commands::cells::list(&config, json).await
            }
            Command::Cells(CellsCommand::Move {
                tenant,
                user,
                to,
                from,
                resume,
                abort,
                grace,
                json,
            }) => {
                let args = commands::cell_move::MoveArgs {
                    tenant,
                    user,
                    to,
                    from,
                    resume,
                    abort,
                    grace,
                    json,
                };
                commands::cell_move::run(&config, args).await
            }
            Command::Cells(CellsCommand::Moves { json }) => {
                commands::cell_move::list(&config, json).await
            }
            Command::Residency(ResidencyCommand::Check { backup, json }) => {
                commands::residency::run(&config, backup.as_deref(), json).await
            }
            Command::SandboxBank(args) => {
                kontor_sandbox_bank::run(args, commands::serve::shutdown_signal()).await
            }
        }
    }
}
