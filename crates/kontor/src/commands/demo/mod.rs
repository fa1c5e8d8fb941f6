//! `kontor demo`: the hub and the sandbox bank in one process, on SQLite, with a demo tenant and
//! one user per sandbox user; a landing page at `/` links each to a fresh connect page, and the
//! result page shows the connection just made. For scripts, `--json` prints one JSON object first.

mod pages;
mod users;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use kontor_api::auth::ClientSecret;
use kontor_domain::connection::Access;
use kontor_domain::tenant::{Scopes, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::user::ExternalId;
use kontor_domain::{ApiClientId, Region, TenantId, UserId};
use kontor_sandbox_bank::tpp::pki::files;
use kontor_sandbox_bank::{BankConfig as SandboxBankConfig, SandboxBank};
use kontor_service::{Hub, LinkRequest};
use kontor_store::{ApiClientStore, NewApiClient, NewTenant, StoreError, TenantStore};
use kontor_worker::Worker;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{BankConfig, Config};
use crate::secret::Secret;
use crate::wiring::{self, Stores};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address of the hub [default: 127.0.0.1:8080]; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the sandbox bank [default: 127.0.0.1:8090 beside the default hub; with
    /// `--listen`, a free port on the hub's host (the same as last time while it is free),
    /// printed].
    #[arg(long, value_name = "ADDR")]
    pub sandbox_listen: Option<SocketAddr>,
    /// Print one JSON object (api_base_url, sandbox_url, client_id, client_secret, tenant_id,
    /// connect_url) as the first line of stdout, then keep serving until SIGTERM.
    #[arg(long)]
    pub json: bool,
    /// Strict mode: the sandbox serves HTTPS and demands TPP certificates (and signed
    /// requests); the hub presents the demo TPP's certificates from `<data_dir>/sandbox-pki`,
    /// generated there on first use, and trusts the sandbox's server CA.
    #[arg(long)]
    pub require_tpp_certificates: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct DemoTenant {
    tenant_id: String,
}

/// The demo tenant, created on first run and remembered in the data folder; each run gets a new
/// API client, since a secret is shown only once.
async fn demo_credentials(
    stores: &Stores,
    data_dir: &Path,
) -> anyhow::Result<(TenantId, ApiClientId, ClientSecret)> {
    let file = data_dir.join("demo-tenant.json");
    let now = Timestamp::now();
    let secret = ClientSecret::generate();
    let known = std::fs::read_to_string(&file)
        .ok()
        .and_then(|raw| serde_json::from_str::<DemoTenant>(&raw).ok())
        .and_then(|demo| TenantId::parse(&demo.tenant_id).ok());
    if let Some(tenant) = known {
        let client = NewApiClient {
            id: ApiClientId::generate(),
            tenant_id: tenant.clone(),
            secret_hash: secret.hash(),
            scopes: Scopes::all(),
            created_at: now,
        };
        match stores.control.create_client(&client).await {
            Ok(_) => return Ok((tenant, client.id, secret)),
            Err(StoreError::NotFound) => {} // the database was reset: start over
            Err(err) => return Err(err).context("creating the demo client"),
        }
    }
    let tenant = NewTenant {
        id: TenantId::generate(),
        name: TenantName::parse("Demo Fintech")?,
        created_at: now,
    };
    let client = NewApiClient {
        id: ApiClientId::generate(),
        tenant_id: tenant.id.clone(),
        secret_hash: secret.hash(),
        scopes: Scopes::all(),
        created_at: now,
    };
    stores
        .control
        .create_tenant(&tenant, &client)
        .await
        .context("creating the demo tenant")?;
    std::fs::write(
        &file,
        serde_json::to_string(&DemoTenant {
            tenant_id: tenant.id.to_string(),
        })?,
    )
    .with_context(|| format!("writing {}", file.display()))?;
    Ok((tenant.id, client.id, secret))
}

/// Where the sandbox listens: its own flag; else 8090 beside the default hub; else (the hub's
/// address given) a free port on the same host, so that `--listen` alone binds nothing else it
/// was not given.
fn sandbox_address(args: &DemoArgs, hub: SocketAddr) -> SocketAddr {
    match (args.sandbox_listen, args.listen) {
        (Some(given), _) => given,
        (None, Some(listen)) => SocketAddr::new(listen.ip(), 0),
        (None, None) => SocketAddr::new(hub.ip(), if hub.port() == 0 { 0 } else { 8090 }),
    }
}

/// Where the demo's sandbox bank keeps its state.
pub(crate) fn sandbox_state_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("sandbox").join("state.json")
}

/// Binds the sandbox's address. A free port (port 0) is remembered in
/// `<data_dir>/sandbox/port` and asked for again at the next start, so that the bank's links a
/// restarted demo handed out before (a payment's authorisation page) keep their address; when
/// that port is taken, another free one is used and a warning says what that breaks.
async fn bind_sandbox(addr: SocketAddr, data_dir: &Path) -> anyhow::Result<TcpListener> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the sandbox bank's address {addr}"))
    };
    if addr.port() != 0 {
        return bind(addr).await;
    }
    let file = data_dir.join("sandbox").join("port");
    let remembered = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| text.trim().parse::<u16>().ok())
        .filter(|port| *port != 0);
    let listener = match remembered {
        Some(port) => match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(
                    port,
                    error = %err,
                    "the sandbox bank's port of the last run is taken, so it gets another: \
                     links to it handed out before (payment pages at the bank) no longer work"
                );
                bind(addr).await?
            }
        },
        None => bind(addr).await?,
    };
    let port = listener.local_addr()?.port();
    let saved = std::fs::create_dir_all(data_dir.join("sandbox"))
        .and_then(|()| std::fs::write(&file, format!("{port}\n")));
    if let Err(err) = saved {
        tracing::warn!(file = %file.display(), error = %err, "cannot remember the sandbox bank's port");
    }
    Ok(listener)
}

/// The address browsers use: the configured public URL, else the bound address, with an
/// unspecified host (`0.0.0.0`, `::`) replaced by loopback (a browser cannot open `0.0.0.0`).
fn browser_base(config: &Config, address: SocketAddr) -> String {
    if let Some(url) = &config.server.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    format!("http://{address}")
}

/// The sandbox banks a sandbox user has accounts at.
pub(crate) fn sandbox_banks_of(username: &str) -> Vec<SandboxBankConfig> {
    kontor_sandbox_bank::default_banks()
        .into_iter()
        .filter(|bank| bank.customers.iter().any(|c| c == username))
        .collect()
}

/// A new connect link for a demo user, opening on their banks, coming back to the result page.
pub(crate) async fn link_for(
    hub: &Hub,
    tenant: &TenantId,
    user: &users::DemoUser,
    id: &UserId,
    done: &str,
) -> anyhow::Result<String> {
    let link = hub
        .create_link(
            tenant,
            LinkRequest {
                user_id: id.clone(),
                bank_id: None,
                redirect_uri: done.to_owned(),
                access: Access::ALL,
                language: user.language,
                psu_id: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating a link for {}: {e}", user.username))?;
    let mut url = link.connect_url;
    if let Some(country) = user.country {
        url.query_pairs_mut().append_pair("country", country);
    }
    Ok(url.to_string())
}

/// The tenant's user for each sandbox user, created on first run.
async fn demo_users(
    hub: &Hub,
    tenant: &TenantId,
) -> anyhow::Result<Vec<(users::DemoUser, UserId)>> {
    let mut out = Vec::new();
    for user in users::DEMO_USERS {
        let region = Region::parse(user.region)?;
        let external = ExternalId::parse(user.username)?;
        let existing = hub
            .user_by_external_id(tenant, &region, &external)
            .await
            .map_err(|e| anyhow::anyhow!("finding the demo user {}: {e}", user.username))?;
        let found = match existing {
            Some(found) => found,
            None => hub
                .create_user(tenant, external, &region)
                .await
                .map_err(|e| anyhow::anyhow!("creating the demo user {}: {e}", user.username))?,
        };
        out.push((user, found.id));
    }
    Ok(out)
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or(config.server.listen);
    let sandbox_listen = sandbox_address(&args, listen);
    let pki_dir = config.data_dir.join("sandbox-pki");
    // The sandbox keeps its consents, tokens and payments beside the hub's data, so that the
    // connections a restarted demo holds still work at the bank.
    let mut builder = SandboxBank::builder()
        .frozen_clock(false)
        .state_file(sandbox_state_file(&config.data_dir));
    if args.require_tpp_certificates {
        let dir = pki_dir.clone();
        // Key generation is CPU work (RSA primes): keep it off the runtime's threads.
        let pki = tokio::task::spawn_blocking(move || {
            kontor_sandbox_bank::SandboxPki::load_or_generate(&dir)
        })
        .await
        .context("generating the sandbox's test PKI")?
        .with_context(|| format!("setting up the test PKI in {}", pki_dir.display()))?;
        builder = builder.require_tpp_certificates(pki);
    }
    let strict = args.require_tpp_certificates;
    let pki_file = |name: &str| strict.then(|| pki_dir.join(name));
    let sandbox_listener = bind_sandbox(sandbox_listen, &config.data_dir).await?;
    let sandbox = builder
        .start_on(sandbox_listener)
        .await
        .with_context(|| format!("starting the sandbox bank on {sandbox_listen}"))?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let address = listener.local_addr()?;

    let mut config = config.clone();
    // Everything here is local and over http: the bank, the hub, the webhook receivers.
    config.development = true;
    config.server.listen = address;
    let api = browser_base(&config, address);
    config.server.public_url = Some(format!("{api}/"));
    config.link.allow_http_redirects = true;
    // The demo's receivers run on this machine, over http.
    config.webhooks.allow_http = true;
    config.webhooks.allow_private_addresses = true;
    config.banks = sandbox
        .banks()
        .into_iter()
        .map(|bank| BankConfig {
            standard: if bank.standard.as_str() == "uk-open-banking" {
                kontor_domain::bank::Standard::UkOpenBanking
            } else {
                kontor_domain::bank::Standard::BerlinGroup
            },
            decoupled_sca: bank.standard.as_str() == "berlin-group",
            id: bank.id,
            name: bank.name,
            country: bank.country,
            base_url: bank.base_url,
            client_id: bank.client_id,
            client_secret: bank.client_secret.map(Secret::new),
            logo_url: None,
            tls_identity: pki_file(files::DEMO_QWAC),
            tls_key: pki_file(files::DEMO_QWAC_KEY),
            ca_bundle: pki_file(files::SERVER_CA),
            payments: true,
            tenant_credentials: Vec::new(),
            // Strict mode: every request signed with the demo seal (Berlin Group signatures;
            // UK FAPI with private_key_jwt).
            signing: strict.then(|| crate::signing::SigningConfig {
                qseal_cert: pki_dir.join(files::DEMO_QSEAL),
                qseal_key: pki_dir.join(files::DEMO_QSEAL_KEY),
                kid: None,
                jws_issuer: None,
            }),
            token_auth: None,
        })
        .collect();

    let stores = Stores::open(&config)?;
    stores.migrate().await?;
    let hub = wiring::hub(&config, &stores)?;
    let keys = wiring::seal_key_canary(&hub).await?;
    if !keys.is_ok() {
        anyhow::bail!(
            "{} (the data under {} was sealed with other keys)",
            keys.explain(),
            config.data_dir.display()
        );
    }
    let state = wiring::app_state(&config, hub.clone())?;
    let (tenant, client_id, secret) = demo_credentials(&stores, &config.data_dir).await?;

    let users = demo_users(&hub, &tenant).await?;
    let done = format!("{api}/demo/done");
    let demo = DemoState {
        hub: hub.clone(),
        tenant: tenant.clone(),
        users,
        done_url: done.clone(),
        client_id: client_id.to_string(),
        data_dir: config.data_dir.display().to_string(),
        sandbox_url: sandbox.url().to_owned(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let (first, id) = &demo.users[0];
        let connect_url = link_for(&hub, &tenant, first, id, &done).await?;
        let links: serde_json::Map<String, serde_json::Value> = demo
            .users
            .iter()
            .map(|(u, _)| {
                (
                    u.username.to_owned(),
                    format!("{api}/demo/connect/{}", u.username).into(),
                )
            })
            .collect();
        let line = serde_json::json!({
            "api_base_url": api,
            "home_url": format!("{api}/"),
            "sandbox_url": sandbox.url(),
            "tenant_id": tenant,
            "client_id": client_id,
            "client_secret": secret.reveal(),
            "connect_url": connect_url,
            "connect_urls": links,
        });
        writeln!(out, "{line}")?;
    } else {
        write!(
            out,
            "{}",
            banner(&api, sandbox.url(), &demo, &client_id, &secret)
        )?;
    }
    out.flush()?;
    drop(out);

    let demo = Router::new()
        .route("/", get(pages::landing))
        .route("/demo/connect/{user}", get(pages::connect))
        .route("/demo/done", get(pages::done))
        .route("/demo/readme", get(pages::readme))
        .with_state(demo);
    let app = kontor_api::router(state).merge(demo);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    // `worker.embedded = false` runs the demo without background jobs (the contract tests do,
    // so that no webhook delivery leaves the machine).
    let worker = config.worker.embedded.then(|| {
        tokio::spawn(Worker::new(hub, wiring::worker_settings(&config)).run(stop_rx.clone()))
    });
    let mut graceful = stop_rx.clone();
    super::serve::trim_memory_when_idle();
    kontor_api::server::serve(listener, app, config.server.http(), async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    })
    .await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    sandbox.shutdown().await;
    stores.close().await;
    Ok(())
}

#[derive(Clone)]
struct DemoState {
    hub: Hub,
    tenant: TenantId,
    users: Vec<(users::DemoUser, UserId)>,
    /// The tenant's redirect URI: the result page.
    done_url: String,
    client_id: String,
    data_dir: String,
    sandbox_url: String,
}

/// What a person reads in the terminal: the page to open first, then the rest, set apart from
/// the log lines (which go to stderr, warnings only unless asked for more).
fn banner(
    api: &str,
    sandbox: &str,
    demo: &DemoState,
    client_id: &ApiClientId,
    secret: &ClientSecret,
) -> String {
    let rule = "=".repeat(72);
    let mut text = format!(
        "\n{rule}\n  Kontor demo is running. Open this page in a browser:\n\n      {api}/\n\n"
    );
    text.push_str("  Or link an account straight away as one of the sandbox users\n");
    text.push_str("  (password sandbox, code 123456):\n\n");
    for (user, _) in &demo.users {
        let banks: Vec<String> = sandbox_banks_of(user.username)
            .into_iter()
            .map(|b| b.name)
            .collect();
        text.push_str(&format!(
            "      {:<6} {api}/demo/connect/{}\n             ({})\n",
            user.username,
            user.username,
            banks.join(", ")
        ));
    }
    text.push_str(&format!(
        "\n  API docs:      {api}/docs\n  Sandbox bank:  {sandbox}\n\n  The demo tenant's API credentials (the secret is shown only now):\n      client_id:     {client_id}\n      client_secret: {}\n\n  Stop with Ctrl-C.\n{rule}\n",
        secret.reveal()
    ));
    text
}
