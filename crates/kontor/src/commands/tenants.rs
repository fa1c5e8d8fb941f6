//! `kontor tenants create|list|update`: tenants are created by operators, each with a first API
//! client whose secret is shown once; an operator may register the redirect URIs a tenant may
//! send its users back to, and how it looks on the hosted pages (`--display-name`, `--logo-url`,
//! `--accent-color`).

use std::io::Write;

use anyhow::Context;
use kontor_api::auth::ClientSecret;
use kontor_domain::branding::{AccentColor, Branding, LogoUrl};
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
    /// Each `Some` replaces that part of the branding; `Some("")` removes it.
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    pub accent_color: Option<String>,
}

impl TenantUpdate {
    fn touches_redirect_uris(&self) -> bool {
        self.clear_redirect_uris || !self.redirect_uris.is_empty()
    }

    fn touches_branding(&self) -> bool {
        self.display_name.is_some() || self.logo_url.is_some() || self.accent_color.is_some()
    }

    /// Each given part parsed: `Some(None)` removes it.
    fn parsed(&self) -> anyhow::Result<BrandingChange> {
        fn part<T>(
            raw: Option<&String>,
            flag: &str,
            parse: impl Fn(&str) -> anyhow::Result<T>,
        ) -> anyhow::Result<Option<Option<T>>> {
            match raw.map(|r| r.trim()) {
                None => Ok(None),
                Some("") => Ok(Some(None)),
                Some(raw) => parse(raw)
                    .with_context(|| format!("{flag} {raw:?}"))
                    .map(|value| Some(Some(value))),
            }
        }
        Ok(BrandingChange {
            display_name: part(self.display_name.as_ref(), "--display-name", |raw| {
                Ok(TenantName::parse(raw)?)
            })?,
            logo_url: part(self.logo_url.as_ref(), "--logo-url", |raw| {
                Ok(LogoUrl::parse(raw)?)
            })?,
            accent_color: part(self.accent_color.as_ref(), "--accent-color", |raw| {
                Ok(AccentColor::parse(raw)?)
            })?,
        })
    }
}

/// The parts of the branding an update replaces (`Some`), each with its new value.
struct BrandingChange {
    display_name: Option<Option<TenantName>>,
    logo_url: Option<Option<LogoUrl>>,
    accent_color: Option<Option<AccentColor>>,
}

impl BrandingChange {
    fn applied_to(self, mut branding: Branding) -> Branding {
        if let Some(name) = self.display_name {
            branding.display_name = name;
        }
        if let Some(logo) = self.logo_url {
            branding.logo_url = logo;
        }
        if let Some(accent) = self.accent_color {
            branding.accent_color = accent;
        }
        branding
    }
}

fn branding_json(branding: &Branding) -> serde_json::Value {
    serde_json::json!({
        "display_name": branding.display_name.as_ref().map(TenantName::as_str),
        "logo_url": branding.logo_url.as_ref().map(LogoUrl::as_str),
        "accent_color": branding.accent_color.map(|c| c.to_string()),
    })
}

pub async fn update(
    config: &Config,
    tenant: &str,
    change: TenantUpdate,
    json: bool,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant).context("tenant id")?;
    anyhow::ensure!(
        change.touches_redirect_uris() || change.touches_branding(),
        "nothing to change: give --redirect-uri URL (repeatable), --clear-redirect-uris, \
         --display-name, --logo-url or --accent-color"
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
    // Every value is checked before anything is written.
    let branding = change
        .touches_branding()
        .then(|| change.parsed())
        .transpose()?;
    let stores = Stores::open_for_control(config).await?;
    let result = write(&stores, &tenant, &change, &uris, branding).await;
    stores.close().await;
    let (stored, branding) = match result {
        Ok(stored) => stored,
        Err(StoreError::NotFound) => anyhow::bail!("no tenant {tenant}"),
        Err(err) => return Err(err).context("updating the tenant"),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({
            "tenant_id": tenant,
            "redirect_uris": stored,
            "branding": branding_json(&branding),
        });
        writeln!(out, "{body}")?;
        return Ok(());
    }
    if stored.is_empty() {
        writeln!(out, "{tenant}: any https redirect_uri is accepted")?;
    } else {
        writeln!(out, "{tenant}: only these redirect URIs are accepted")?;
        for uri in stored {
            writeln!(out, "    {uri}")?;
        }
    }
    let shown = |value: Option<String>| value.unwrap_or_else(|| "(none)".to_owned());
    writeln!(
        out,
        "  display name: {}",
        shown(branding.display_name.map(|n| n.to_string()))
    )?;
    writeln!(
        out,
        "  logo URL:     {}",
        shown(branding.logo_url.map(|u| u.to_string()))
    )?;
    writeln!(
        out,
        "  accent:       {}",
        shown(branding.accent_color.map(|c| c.to_string()))
    )?;
    Ok(())
}

/// Writes what changed; returns the redirect URIs and branding as stored afterwards.
async fn write(
    stores: &Stores,
    tenant: &TenantId,
    change: &TenantUpdate,
    uris: &[String],
    branding_change: Option<BrandingChange>,
) -> Result<(Vec<String>, Branding), StoreError> {
    let control = &stores.control;
    if change.touches_redirect_uris() {
        control
            .set_redirect_uris(tenant, uris, Timestamp::now())
            .await?;
    }
    let mut branding = control.branding(tenant).await?;
    if let Some(branding_change) = branding_change {
        branding = branding_change.applied_to(branding);
        control
            .set_branding(tenant, &branding, Timestamp::now())
            .await?;
    }
    Ok((control.redirect_uris(tenant).await?, branding))
}
