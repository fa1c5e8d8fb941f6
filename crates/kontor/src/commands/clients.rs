//! `kontor clients create|revoke|list`: a tenant's API clients. Revocation stops new tokens at
//! once and existing ones within `auth.client_cache_seconds`.

use std::io::Write;

use anyhow::Context;
use kontor_api::auth::ClientSecret;
use kontor_domain::tenant::{ApiClient, Scopes};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, TenantId};
use kontor_store::{ApiClientStore, NewApiClient, StoreError};

use crate::config::Config;
use crate::wiring::Stores;

fn describe(client: &ApiClient) -> serde_json::Value {
    serde_json::json!({
        "client_id": client.id,
        "tenant_id": client.tenant_id,
        "scopes": client.scopes.to_string(),
        "created_at": client.created_at,
        "revoked_at": client.revoked_at,
    })
}

pub async fn create(
    config: &Config,
    tenant: &str,
    scopes: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let scopes = match scopes {
        Some(raw) => Scopes::parse(raw).context("--scopes")?,
        None => Scopes::all(),
    };
    anyhow::ensure!(!scopes.is_empty(), "--scopes: give at least one scope");
    let stores = Stores::open_for_control(config).await?;
    let secret = ClientSecret::generate();
    let new = NewApiClient {
        id: ApiClientId::generate(),
        tenant_id: tenant.clone(),
        secret_hash: secret.hash(),
        scopes,
        created_at: Timestamp::now(),
    };
    let client = match stores.control.create_client(&new).await {
        Ok(client) => client,
        Err(StoreError::NotFound) => anyhow::bail!("no tenant {tenant}"),
        Err(err) => return Err(err).context("creating the client"),
    };
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let mut body = describe(&client);
        body["client_secret"] = serde_json::Value::String(secret.reveal().to_owned());
        writeln!(out, "{body}")?;
    } else {
        writeln!(out, "client_id:     {}", client.id)?;
        writeln!(out, "client_secret: {}", secret.reveal())?;
        writeln!(out, "scopes:        {}", client.scopes)?;
        writeln!(out, "The secret is shown only now; store it safely.")?;
    }
    Ok(())
}

pub async fn revoke(config: &Config, client: &str, json: bool) -> anyhow::Result<()> {
    let id = ApiClientId::parse(client).context("client id")?;
    let stores = Stores::open_for_control(config).await?;
    let client = match stores.control.revoke_client(&id, Timestamp::now()).await {
        Ok(client) => client,
        Err(StoreError::NotFound) => anyhow::bail!("no client {id}"),
        Err(err) => return Err(err).context("revoking the client"),
    };
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", describe(&client))?;
    } else {
        let at = client.revoked_at.map(|t| t.to_string()).unwrap_or_default();
        writeln!(out, "revoked {} at {at}", client.id)?;
    }
    Ok(())
}

pub async fn list(config: &Config, tenant: &str, json: bool) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let stores = Stores::open_for_control(config).await?;
    let clients = stores
        .control
        .list_clients(&tenant)
        .await
        .context("listing clients")?;
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = clients.iter().map(describe).collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        for c in clients {
            let state = if c.is_active() { "active" } else { "revoked" };
            writeln!(out, "{}  {state}  {}", c.id, c.scopes)?;
        }
    }
    Ok(())
}
