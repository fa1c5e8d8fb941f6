//! `kontor tenants create|list|update`: tenants are created by operators, each with a first API
//! client whose secret is shown once; an operator may register the redirect URIs a tenant may
//! send its users back to.

use std::io::Write;

use anyhow::Context;
use kontor_api::auth::ClientSecret;
use kontor_domain::tenant::{Scopes, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, TenantId};
use kontor_service::normalise_redirect_uri;
use kontor_store::{NewApiClient, NewTenant, StoreError, TenantStore};

use crate::config::Config;
use crate::wiring::Stores;

pub async fn create(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let name = TenantName::parse(name).context("tenant name")?;
    let stores = Stores::open_for_control(config).await?;
    let now = Timestamp::now();
    let tenant = NewTenant {
        id: TenantId::generate(),
        name,
        created_at: now,
    };
    let secret = ClientSecret::generate();
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
        .context("creating the tenant")?;
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({
            "tenant_id": tenant.id,
            "client_id": client.id,
            "client_secret": secret.reveal(),
        });
        writeln!(out, "{body}")?;
    } else {
        writeln!(out, "tenant_id:     {}", tenant.id)?;
        writeln!(out, "client_id:     {}", client.id)?;
        writeln!(out, "client_secret: {}", secret.reveal())?;
        writeln!(out, "The secret is shown only now; store it safely.")?;
    }
    Ok(())
}

pub async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = Stores::open_for_control(config).await?;
    let tenants = stores
        .control
        .list_tenants()
        .await
        .context("listing tenants")?;
    let mut rows = Vec::new();
    for t in &tenants {
        let uris = stores
            .control
            .redirect_uris(&t.id)
            .await
            .context("reading redirect URIs")?;
        rows.push((t, uris));
    }
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(t, uris)| {
                serde_json::json!({
                    "tenant_id": t.id, "name": t.name, "created_at": t.created_at,
                    "redirect_uris": uris,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        for (t, uris) in rows {
            writeln!(out, "{}  {}  {}", t.id, t.created_at, t.name)?;
            for uri in uris {
                writeln!(out, "    redirect_uri {uri}")?;
            }
        }
    }
    Ok(())
}

/// Most redirect URIs one tenant may register.
const MAX_REDIRECT_URIS: usize = 50;

/// What `kontor tenants update` changes.
#[derive(Debug, Default)]
pub struct TenantUpdate {
    /// Replaces the registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Removes every registered redirect URI: the tenant may use any https URI again.
    pub clear_redirect_uris: bool,
}

pub async fn update(
    config: &Config,
    tenant: &str,
    change: TenantUpdate,
    json: bool,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant).context("tenant id")?;
    anyhow::ensure!(
        change.clear_redirect_uris || !change.redirect_uris.is_empty(),
        "nothing to change: give --redirect-uri URL (repeatable) or --clear-redirect-uris"
    );
    anyhow::ensure!(
        change.redirect_uris.len() <= MAX_REDIRECT_URIS,
        "--redirect-uri: at most {MAX_REDIRECT_URIS} per tenant"
    );
    let uris = change
        .redirect_uris
        .iter()
        .map(|raw| {
            normalise_redirect_uri(raw, config.link.allow_http_redirects)
                .map_err(|e| anyhow::anyhow!("--redirect-uri {raw:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stores = Stores::open_for_control(config).await?;
    let result = stores
        .control
        .set_redirect_uris(&tenant, &uris, Timestamp::now())
        .await;
    let stored = match result {
        Ok(()) => stores.control.redirect_uris(&tenant).await,
        Err(err) => Err(err),
    };
    stores.close().await;
    let stored = match stored {
        Ok(stored) => stored,
        Err(StoreError::NotFound) => anyhow::bail!("no tenant {tenant}"),
        Err(err) => return Err(err).context("updating the tenant"),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({ "tenant_id": tenant, "redirect_uris": stored });
        writeln!(out, "{body}")?;
    } else if stored.is_empty() {
        writeln!(out, "{tenant}: any https redirect_uri is accepted")?;
    } else {
        writeln!(out, "{tenant}: only these redirect URIs are accepted")?;
        for uri in stored {
            writeln!(out, "    {uri}")?;
        }
    }
    Ok(())
}
