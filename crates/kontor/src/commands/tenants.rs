//! `kontor tenants create|list`: tenants are created by operators, each with a first API client
//! whose secret is shown once.

use std::io::Write;

use anyhow::Context;
use kontor_api::auth::ClientSecret;
use kontor_domain::tenant::{Scopes, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, TenantId};
use kontor_store::{NewApiClient, NewTenant, TenantStore};

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
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = tenants
            .iter()
            .map(|t| {
                serde_json::json!({
                    "tenant_id": t.id, "name": t.name, "created_at": t.created_at,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        for t in tenants {
            writeln!(out, "{}  {}  {}", t.id, t.created_at, t.name)?;
        }
    }
    Ok(())
}
