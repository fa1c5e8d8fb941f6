//! The control database: tenants (with the redirect URIs they allow and their branding) and API clients (with the
//! certificates they are bound to).

use async_trait::async_trait;
use kontor_domain::branding::{AccentColor, Branding, LogoUrl};
use kontor_domain::tenant::{ApiClient, Scopes, Tenant, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, CertificateBinding, CertificateThumbprint, TenantId};
use kontor_store::{
    ApiClientStore, DatabaseRole, MAX_CLIENT_CERTIFICATES, MigrationStatus, NewApiClient,
    NewTenant, Schema, SecretHash, StoreError, StoreResult, TenantStore,
};
use sqlx::any::AnyRow;

use crate::database::{PoolSettings, SqlDatabase, column};
use crate::tx::Tx;

#[derive(Debug, Clone)]
pub struct SqlControl {
    db: SqlDatabase,
}

impl SqlControl {
    pub fn open(url: &str, settings: &PoolSettings) -> StoreResult<Self> {
        SqlDatabase::open(url, DatabaseRole::Control, settings).map(|db| Self { db })
    }

    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }
}

/// The columns of an API client row (a macro so queries stay `&'static str`).
macro_rules! client_columns {
    () => {
        "id, tenant_id, scopes, created_at, revoked_at"
    };
}

fn tenant_from_row(row: &AnyRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        name: TenantName::parse(&column::<String>(row, "name")?).map_err(StoreError::corrupt)?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
    })
}

fn client_from_row(row: &AnyRow) -> StoreResult<ApiClient> {
    Ok(ApiClient {
        id: ApiClientId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        scopes: Scopes::parse(&column::<String>(row, "scopes")?).map_err(StoreError::corrupt)?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
        revoked_at: column::<Option<i64>>(row, "revoked_at")?.map(Timestamp::from_unix_micros),
    })
}

impl SqlControl {
    /// `NotFound` unless the tenant exists, read on `conn` (the caller's write transaction).
    async fn require_tenant(&self, tx: &mut Tx<'_>, tenant: &TenantId) -> StoreResult<()> {
        let exists: i64 = tx
            .scalar(
                sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id = $1")
                    .bind(tenant.as_str()),
            )
            .await?;
        if exists == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_client(&self, tx: &mut Tx<'_>, client: &NewApiClient) -> StoreResult<()> {
        tx.execute(
            sqlx::query(
                "INSERT INTO api_clients (id, tenant_id, secret_hash, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(client.id.as_str())
            .bind(client.tenant_id.as_str())
            .bind(client.secret_hash.0.as_str())
            .bind(client.scopes.to_string())
            .bind(client.created_at.unix_micros()),
        )
        .await
        .map(drop)
    }

    fn client_from_new(client: &NewApiClient) -> ApiClient {
        ApiClient {
            id: client.id.clone(),
            tenant_id: client.tenant_id.clone(),
            scopes: client.scopes.clone(),
            created_at: client.created_at,
            revoked_at: None,
        }
    }
}

#[async_trait]
impl TenantStore for SqlControl {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        first_client: &NewApiClient,
    ) -> StoreResult<Tenant> {
        self.db
            .write("create_tenant", |tx| {
                Box::pin(async move {
                    tx.execute(
                        sqlx::query(
                            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
                        )
                        .bind(tenant.id.as_str())
                        .bind(tenant.name.as_str())
                        .bind(tenant.created_at.unix_micros()),
                    )
                    .await?;
                    self.insert_client(tx, first_client).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(Tenant {
            id: tenant.id.clone(),
            name: tenant.name.clone(),
            created_at: tenant.created_at,
        })
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Tenant> {
        self.db
            .row(
                || {
                    sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
                        .bind(id.as_str())
                },
                tenant_from_row,
            )
            .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.db
            .rows(
                || sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id"),
                tenant_from_row,
            )
            .await
    }

    async fn redirect_uris(&self, tenant: &TenantId) -> StoreResult<Vec<String>> {
        self.db
            .scalars(|| {
                sqlx::query_scalar(
            "SELECT uri FROM tenant_redirect_uris WHERE tenant_id = $1 ORDER BY position, uri",
        )
        .bind(tenant.as_str())
            })
            .await
    }

    async fn set_redirect_uris(
        &self,
        tenant: &TenantId,
        uris: &[String],
        at: Timestamp,
    ) -> StoreResult<()> {
        self.db
            .write("set_redirect_uris", |tx| {
                Box::pin(async move {
                    self.require_tenant(tx, tenant).await?;
                    tx.execute(
                        sqlx::query("DELETE FROM tenant_redirect_uris WHERE tenant_id = $1")
                            .bind(tenant.as_str()),
                    )
                    .await?;
                    for (position, uri) in (0_i64..).zip(uris) {
                        tx.execute(sqlx::query(
                    "INSERT INTO tenant_redirect_uris (tenant_id, uri, position, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, uri) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(uri.as_str())
                .bind(position)
                .bind(at.unix_micros())).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn branding(&self, tenant: &TenantId) -> StoreResult<Branding> {
        // One read: the tenant (to tell "none set" from "no tenant") and its row, if any.
        let row = self
            .db
            .fetch_optional(|| {
                sqlx::query(
                    "SELECT t.id, b.display_name, b.logo_url, b.accent_color FROM tenants t \
                     LEFT JOIN tenant_branding b ON b.tenant_id = t.id WHERE t.id = $1",
                )
                .bind(tenant.as_str())
            })
            .await?
            .ok_or(StoreError::NotFound)?;
        // Every value was checked when it was set. One that no longer passes (written behind
        // the hub's back, or by a release with other rules) is left out, with a warning, rather
        // than shown on the hosted pages or made to break them: the pages fall back to the hub's
        // own look for that part.
        fn checked<T, E>(
            tenant: &TenantId,
            part: &str,
            raw: Option<String>,
            parse: impl Fn(&str) -> Result<T, E>,
        ) -> Option<T> {
            let raw = raw?;
            let parsed = parse(&raw).ok();
            if parsed.is_none() {
                tracing::warn!(tenant.id = %tenant, part, "stored branding is not valid; left out");
            }
            parsed
        }
        Ok(Branding {
            display_name: checked(
                tenant,
                "display_name",
                column(&row, "display_name")?,
                TenantName::parse,
            ),
            logo_url: checked(
                tenant,
                "logo_url",
                column(&row, "logo_url")?,
                LogoUrl::parse,
            ),
            accent_color: checked(
                tenant,
                "accent_color",
                column(&row, "accent_color")?,
                AccentColor::parse,
            ),
        })
    }

    async fn set_branding(
        &self,
        tenant: &TenantId,
        branding: &Branding,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.db
            .write("set_branding", |tx| {
                Box::pin(async move {
                    self.require_tenant(tx, tenant).await?;
                    tx.execute(sqlx::query(
                "INSERT INTO tenant_branding (tenant_id, display_name, logo_url, accent_color, \
                 updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET \
                 display_name = excluded.display_name, logo_url = excluded.logo_url, \
                 accent_color = excluded.accent_color, updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(
                branding
                    .display_name
                    .as_ref()
                    .map(|n| n.as_str().to_owned()),
            )
            .bind(branding.logo_url.as_ref().map(|u| u.as_str().to_owned()))
            .bind(branding.accent_color.map(|c| c.to_string()))
            .bind(at.unix_micros())).await?;
                    Ok(())
                })
            })
            .await
    }
}

#[async_trait]
impl ApiClientStore for SqlControl {
    async fn create_client(&self, client: &NewApiClient) -> StoreResult<ApiClient> {
        self.db
            .write("create_client", |tx| {
                Box::pin(async move {
                    self.require_tenant(tx, &client.tenant_id).await?;
                    self.insert_client(tx, client).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(Self::client_from_new(client))
    }

    async fn client(&self, id: &ApiClientId) -> StoreResult<ApiClient> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM api_clients WHERE id = $1"
        );
        self.db
            .row(|| sqlx::query(sql).bind(id.as_str()), client_from_row)
            .await
    }

    async fn client_with_secret(&self, id: &ApiClientId) -> StoreResult<(ApiClient, SecretHash)> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            ", secret_hash FROM api_clients WHERE id = $1"
        );
        let row = self
            .db
            .fetch_optional(|| sqlx::query(sql).bind(id.as_str()))
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((
            client_from_row(&row)?,
            SecretHash(column(&row, "secret_hash")?),
        ))
    }

    async fn revoke_client(&self, id: &ApiClientId, at: Timestamp) -> StoreResult<ApiClient> {
        let updated = self
            .db
            .write("revoke_client", |tx| {
                Box::pin(async move {
                    let result = tx.execute(sqlx::query(
                "UPDATE api_clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id.as_str())
            .bind(at.unix_micros())).await?;

                    Ok(result)
                })
            })
            .await?;
        let client = self.client(id).await?;
        tracing::debug!(client.id = %id, newly_revoked = updated > 0, "client revoked");
        Ok(client)
    }

    async fn list_clients(&self, tenant: &TenantId) -> StoreResult<Vec<ApiClient>> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM api_clients WHERE tenant_id = $1 ORDER BY created_at, id"
        );
        self.db
            .rows(|| sqlx::query(sql).bind(tenant.as_str()), client_from_row)
            .await
    }

    async fn client_certificates(&self, id: &ApiClientId) -> StoreResult<Vec<CertificateBinding>> {
        self.db
            .fetch_all(|| {
                sqlx::query(
                    "SELECT thumbprint, created_at FROM api_client_certificates \
                     WHERE client_id = $1 ORDER BY created_at, thumbprint",
                )
                .bind(id.as_str())
            })
            .await?
            .iter()
            .map(|row| {
                Ok(CertificateBinding {
                    thumbprint: CertificateThumbprint::parse(&column::<String>(row, "thumbprint")?)
                        .map_err(StoreError::corrupt)?,
                    bound_at: Timestamp::from_unix_micros(column(row, "created_at")?),
                })
            })
            .collect()
    }

    async fn bind_certificate(
        &self,
        id: &ApiClientId,
        thumbprint: &CertificateThumbprint,
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.db
            .write("bind_certificate", |tx| {
                Box::pin(async move {
                    let exists: i64 = tx
                        .scalar(
                            sqlx::query_scalar("SELECT COUNT(*) FROM api_clients WHERE id = $1")
                                .bind(id.as_str()),
                        )
                        .await?;
                    if exists == 0 {
                        return Err(StoreError::NotFound);
                    }
                    let bound: Vec<String> = tx.scalars(sqlx::query_scalar(
                "SELECT thumbprint FROM api_client_certificates WHERE client_id = $1",
            )
            .bind(id.as_str())).await?;
                    let stored = thumbprint.x5t_s256();
                    if bound.contains(&stored) {
                        return Ok(false);
                    }
                    if bound.len() >= MAX_CLIENT_CERTIFICATES {
                        return Err(StoreError::Conflict {
                            constraint: "api_client_certificates_limit".to_owned(),
                        });
                    }
                    tx.execute(sqlx::query(
                "INSERT INTO api_client_certificates (client_id, thumbprint, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id.as_str())
            .bind(stored.as_str())
            .bind(at.unix_micros())).await?;

                    Ok(true)
                })
            })
            .await
    }

    async fn unbind_certificate(
        &self,
        id: &ApiClientId,
        thumbprint: &CertificateThumbprint,
    ) -> StoreResult<bool> {
        self.db
            .write("unbind_certificate", |tx| {
                Box::pin(async move {
                    let result = tx.execute(sqlx::query(
                "DELETE FROM api_client_certificates WHERE client_id = $1 AND thumbprint = $2",
            )
            .bind(id.as_str())
            .bind(thumbprint.x5t_s256())).await?;

                    Ok(result > 0)
                })
            })
            .await
    }
}

#[async_trait]
impl Schema for SqlControl {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }
    fn role(&self) -> DatabaseRole {
        self.db.role()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await
    }
    async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        self.db.migration_status().await
    }
    async fn migrate(&self) -> StoreResult<Vec<i64>> {
        self.db.migrate().await
    }
    fn migration_description(&self, version: i64) -> Option<String> {
        self.db.migration_description(version)
    }
}
