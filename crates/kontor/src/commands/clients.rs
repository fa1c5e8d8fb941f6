//! `kontor clients create|revoke|list|bind|unbind`: a tenant's API clients and the certificates
//! they are bound to. Revocation and unbinding stop new tokens at once and existing ones within
//! `auth.client_cache_seconds`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use kontor_api::auth::ClientSecret;
use kontor_domain::tenant::{ApiClient, Scopes};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, CertificateBinding, CertificateThumbprint, TenantId};
use kontor_store::{ApiClientStore, MAX_CLIENT_CERTIFICATES, NewApiClient, StoreError};

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
    let mut bound = Vec::with_capacity(clients.len());
    for client in &clients {
        let certificates = stores
            .control
            .client_certificates(&client.id)
            .await
            .context("reading the clients' certificates")?;
        bound.push(certificates);
    }
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = clients
            .iter()
            .zip(&bound)
            .map(|(client, certificates)| {
                let mut row = describe(client);
                row["certificates"] = certificates_json(certificates);
                row
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        for (c, certificates) in clients.iter().zip(&bound) {
            let state = if c.is_active() { "active" } else { "revoked" };
            writeln!(out, "{}  {state}  {}", c.id, c.scopes)?;
            for binding in certificates {
                writeln!(out, "    bound to x5t#S256 {}", binding.thumbprint)?;
            }
        }
    }
    Ok(())
}

fn certificates_json(certificates: &[CertificateBinding]) -> serde_json::Value {
    certificates
        .iter()
        .map(|binding| {
            serde_json::json!({
                "x5t#S256": binding.thumbprint.x5t_s256(),
                "sha256": binding.thumbprint.hex(),
                "bound_at": binding.bound_at,
            })
        })
        .collect()
}

/// The client's certificates after a change, read before the stores close.
async fn certificates_after(
    stores: &Stores,
    id: &ApiClientId,
) -> anyhow::Result<Vec<CertificateBinding>> {
    let certificates = stores
        .control
        .client_certificates(id)
        .await
        .context("reading the client's certificates");
    stores.close().await;
    certificates
}

/// `bind`'s and `unbind`'s JSON line: the certificate, whether it changed anything (`added` or
/// `removed`), and the client's certificates now.
fn change_json(
    id: &ApiClientId,
    thumbprint: &CertificateThumbprint,
    (field, changed): (&str, bool),
    certificates: &[CertificateBinding],
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "client_id": id,
        "x5t#S256": thumbprint.x5t_s256(),
        "sha256": thumbprint.hex(),
        "certificates": certificates_json(certificates),
    });
    body[field] = serde_json::Value::Bool(changed);
    body
}

/// Where the certificate to bind comes from.
#[derive(Debug)]
pub enum CertificateSource {
    File(PathBuf),
    Thumbprint(String),
}

pub async fn bind(
    config: &Config,
    client: &str,
    source: CertificateSource,
    json: bool,
) -> anyhow::Result<()> {
    let id = ApiClientId::parse(client).context("client id")?;
    let (thumbprint, described) = match source {
        CertificateSource::File(path) => {
            let pem = std::fs::read(&path)
                .with_context(|| format!("--certificate: reading {}", path.display()))?;
            let certificate =
                kontor_api::server::tls::pem_certificate(&pem).map_err(|problem| {
                    anyhow::anyhow!("--certificate {}: {problem}", path.display())
                })?;
            let described = format!(
                "{} (expires {})",
                certificate.subject,
                kontor_domain::time::Timestamp::from_unix_micros(
                    certificate.not_after.saturating_mul(1_000_000)
                )
            );
            (certificate.thumbprint, Some(described))
        }
        CertificateSource::Thumbprint(raw) => (
            CertificateThumbprint::parse(&raw).context("--thumbprint")?,
            None,
        ),
    };
    let stores = Stores::open_for_control(config).await?;
    let added = match stores
        .control
        .bind_certificate(&id, &thumbprint, Timestamp::now())
        .await
    {
        Ok(added) => added,
        Err(StoreError::NotFound) => anyhow::bail!("no client {id}"),
        Err(StoreError::Conflict { .. }) => anyhow::bail!(
            "client {id} is already bound to {MAX_CLIENT_CERTIFICATES} certificates; unbind one \
             first"
        ),
        Err(err) => return Err(err).context("binding the certificate"),
    };
    let certificates = certificates_after(&stores, &id).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            change_json(&id, &thumbprint, ("added", added), &certificates)
        )?;
    } else {
        let verb = if added { "bound" } else { "already bound" };
        writeln!(out, "{id} {verb} to x5t#S256 {thumbprint}")?;
        if let Some(described) = described {
            writeln!(out, "certificate:   {described}")?;
        }
        writeln!(
            out,
            "The client now gets tokens only over mutual TLS with one of its {} certificate(s).",
            certificates.len()
        )?;
    }
    Ok(())
}

pub async fn unbind(
    config: &Config,
    client: &str,
    thumbprint: &str,
    json: bool,
) -> anyhow::Result<()> {
    let id = ApiClientId::parse(client).context("client id")?;
    let thumbprint = CertificateThumbprint::parse(thumbprint).context("--thumbprint")?;
    let stores = Stores::open_for_control(config).await?;
    match stores.control.client(&id).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => anyhow::bail!("no client {id}"),
        Err(err) => return Err(err).context("reading the client"),
    }
    let removed = stores
        .control
        .unbind_certificate(&id, &thumbprint)
        .await
        .context("unbinding the certificate")?;
    let certificates = certificates_after(&stores, &id).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            change_json(&id, &thumbprint, ("removed", removed), &certificates)
        )?;
    } else if !removed {
        writeln!(
            out,
            "{id} was not bound to x5t#S256 {thumbprint}; nothing changed"
        )?;
    } else if certificates.is_empty() {
        writeln!(
            out,
            "unbound; {id} is bound to no certificate now and works without one"
        )?;
    } else {
        writeln!(
            out,
            "unbound; {id} is still bound to {} certificate(s)",
            certificates.len()
        )?;
    }
    Ok(())
}
