//! `kontor demo`: the hub and the sandbox bank in one process, on SQLite, with a demo tenant,
//! a demo user and a connect link a person can open in a browser — then a page that shows the
//! linked accounts and transactions. For scripts, `--json` prints one JSON object first.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use kontor_api::auth::ClientSecret;
use kontor_api::escape_html as esc;
use kontor_domain::connection::{Access, ConnectionStatus};
use kontor_domain::tenant::{Scopes, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::user::ExternalId;
use kontor_domain::{ApiClientId, ConnectionId, Region, TenantId};
use kontor_sandbox_bank::SandboxBank;
use kontor_sandbox_bank::tpp::pki::files;
use kontor_service::{Hub, LinkRequest};
use kontor_store::{
    ApiClientStore, NewApiClient, NewTenant, StoreError, TenantStore, TransactionFilter,
};
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
    /// Address of the sandbox bank [default: the hub's host, port 8090; port 0 if the hub's is 0].
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

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or(config.server.listen);
    let sandbox_listen = args.sandbox_listen.unwrap_or_else(|| {
        let port = if listen.port() == 0 { 0 } else { 8090 };
        SocketAddr::new(listen.ip(), port)
    });
    let pki_dir = config.data_dir.join("sandbox-pki");
    let mut builder = SandboxBank::builder().frozen_clock(false);
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
    let sandbox = builder
        .start(sandbox_listen)
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
    config.server.public_url = Some(format!("http://{address}/"));
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

    // A demo user (region de) and a link for them, coming back to the demo's own page.
    let region = Region::parse("de")?;
    let external = ExternalId::parse("demo-user")?;
    let existing = hub
        .user_by_external_id(&tenant, &region, &external)
        .await
        .map_err(|e| anyhow::anyhow!("finding the demo user: {e}"))?;
    let user = match existing {
        Some(user) => user,
        None => hub
            .create_user(&tenant, external, &region)
            .await
            .map_err(|e| anyhow::anyhow!("creating the demo user: {e}"))?,
    };
    let done = format!("http://{address}/demo/done");
    let link = hub
        .create_link(
            &tenant,
            LinkRequest {
                user_id: user.id,
                bank_id: None,
                redirect_uri: done,
                access: Access::ALL,
                language: None,
                psu_id: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the demo link: {e}"))?;

    let api = format!("http://{address}");
    let mut out = std::io::stdout().lock();
    if args.json {
        let line = serde_json::json!({
            "api_base_url": api,
            "sandbox_url": sandbox.url(),
            "tenant_id": tenant,
            "client_id": client_id,
            "client_secret": secret.reveal(),
            "connect_url": link.connect_url.as_str(),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "Kontor demo: the hub at {api}, the sandbox bank at {}",
            sandbox.url()
        )?;
        writeln!(
            out,
            "\nOpen this link to connect a sandbox bank account:\n\n  {}\n",
            link.connect_url
        )?;
        writeln!(
            out,
            "Sign in as alice (Sonnenbank), bob (Thames Bank) or carol: password sandbox, code 123456."
        )?;
        writeln!(
            out,
            "\nThe demo tenant's API credentials (API docs at {api}/docs):"
        )?;
        writeln!(
            out,
            "  client_id:     {client_id}\n  client_secret: {}",
            secret.reveal()
        )?;
        writeln!(out, "\nStop with Ctrl-C.")?;
    }
    out.flush()?;
    drop(out);

    let demo = Router::new()
        .route("/demo/done", get(done_page))
        .with_state(DemoState {
            hub: hub.clone(),
            tenant,
        });
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
}

/// Where the demo user lands after linking: the accounts and latest transactions.
async fn done_page(State(demo): State<DemoState>, RawQuery(query): RawQuery) -> Html<String> {
    let params: std::collections::BTreeMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let status = params.get("status").cloned().unwrap_or_default();
    let Some(id) = params
        .get("connection_id")
        .and_then(|raw| ConnectionId::parse(raw).ok())
    else {
        return page("Kontor demo", "<p>No connection.</p>", false);
    };
    if status != "active" {
        let reason = params.get("reason").cloned().unwrap_or_default();
        return page(
            "Not linked",
            &format!(
                "<p>The connection ended as <b>{}</b> ({}).</p>",
                esc(&status),
                esc(&reason)
            ),
            false,
        );
    }
    let Ok(cell) = demo.hub.cell_of(&id) else {
        return page("Kontor demo", "<p>Unknown connection.</p>", false);
    };
    let connection = match cell.connection(&demo.tenant, &id).await {
        Ok(c) => c,
        Err(_) => return page("Kontor demo", "<p>Unknown connection.</p>", false),
    };
    if connection.status != ConnectionStatus::Active || connection.last_synced_at.is_none() {
        return page(
            "Fetching your data…",
            "<p>The first sync is running; this page refreshes.</p>",
            true,
        );
    }
    let mut body = format!(
        "<p>Connection <code>{}</code> at <b>{}</b> is active.</p>",
        esc(id.as_str()),
        esc(connection.bank_id.as_ref().map_or("", |b| b.as_str()))
    );
    let accounts = demo
        .hub
        .accounts_of(&demo.tenant, &connection.user_id, None, 50)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    for account in accounts {
        let name = account
            .details
            .name
            .clone()
            .or(account.details.product.clone())
            .unwrap_or_default();
        body.push_str(&format!(
            "<h2>{} <small>{}</small></h2>",
            esc(&name),
            esc(account.details.iban.as_deref().unwrap_or(""))
        ));
        if let Ok(balances) = demo.hub.balances(&demo.tenant, &account.row.id).await {
            for b in balances {
                body.push_str(&format!(
                    "<p>{}: <b>{} {}</b></p>",
                    esc(b.balance.kind.as_str()),
                    esc(&b.balance.amount.to_decimal_string()),
                    esc(b.balance.amount.currency().code())
                ));
            }
        }
        let latest = demo
            .hub
            .transactions(
                &demo.tenant,
                &account.row.id,
                &TransactionFilter::default(),
                None,
                10,
            )
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        body.push_str("<table>");
        for t in latest {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:right\">{}</td></tr>",
                esc(&t.row.sort_date.to_string()),
                esc(t.row.status.as_str()),
                esc(t
                    .details
                    .counterparty_name
                    .as_deref()
                    .or(t.details.remittance.as_deref())
                    .unwrap_or("")),
                esc(&t.row.amount.to_decimal_string()),
            ));
        }
        body.push_str("</table>");
    }
    page("Linked", &body, false)
}

fn page(title: &str, body: &str, refresh: bool) -> Html<String> {
    let refresh = if refresh {
        "<meta http-equiv=\"refresh\" content=\"2\">"
    } else {
        ""
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <title>{t}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}table{{width:100%;border-collapse:collapse}}td{{border-bottom:1px solid #ddd;padding:.3rem}}</style></head>\
         <body data-page=\"demo-done\"><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
}
