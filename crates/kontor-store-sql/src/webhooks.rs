//! Webhook endpoints and tenants' data keys in the control database. Secrets arrive sealed and
//! leave sealed; rotating moves the sealed current secret to the previous one in SQL, so the
//! secret is never opened for it.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{
    Description, DisabledReason, EndpointStatus, EventSelection, WebhookEndpoint,
};
use kontor_domain::{TenantId, WebhookEndpointId};
use kontor_store::{
    EndpointChange, EndpointSecrets, NewWebhookEndpoint, StoreError, StoreResult,
    WebhookEndpointStore,
};
use sqlx::any::AnyRow;

use crate::control::SqlControl;
use crate::database::{column, optional_timestamp};
use crate::query::{Arg, Filtered};
use crate::tx::Tx;

macro_rules! endpoint_columns {
    () => {
        "id, tenant_id, url, description, events, status, disabled_reason, disabled_at, \
         previous_expires_at, created_at, updated_at"
    };
}

fn endpoint_from_row(row: &AnyRow) -> StoreResult<WebhookEndpoint> {
    let status: String = column(row, "status")?;
    let reason: Option<String> = column(row, "disabled_reason")?;
    Ok(WebhookEndpoint {
        id: WebhookEndpointId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        url: column(row, "url")?,
        description: column::<Option<String>>(row, "description")?
            .map(|raw| Description::parse(&raw))
            .transpose()
            .map_err(StoreError::corrupt)?
            .flatten(),
        events: EventSelection::from_words(&column::<String>(row, "events")?)
            .map_err(StoreError::corrupt)?,
        status: EndpointStatus::parse(&status).ok_or_else(|| StoreError::corrupt(status))?,
        disabled_reason: reason
            .map(|r| DisabledReason::parse(&r).ok_or_else(|| StoreError::corrupt(r)))
            .transpose()?,
        disabled_at: optional_timestamp(row, "disabled_at")?,
        previous_secret_expires_at: optional_timestamp(row, "previous_expires_at")?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
        updated_at: Timestamp::from_unix_micros(column(row, "updated_at")?),
    })
}

async fn endpoint_in(
    tx: &mut Tx<'_>,
    tenant: &TenantId,
    id: &WebhookEndpointId,
) -> StoreResult<WebhookEndpoint> {
    let sql = concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
    );
    tx.row(
        sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str()),
        endpoint_from_row,
    )
    .await
}

#[async_trait]
impl WebhookEndpointStore for SqlControl {
    async fn create_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        max_per_tenant: usize,
    ) -> StoreResult<WebhookEndpoint> {
        let db = self.database();
        let e = &new.endpoint;
        db.write("create_webhook_endpoint", |tx| {
            Box::pin(async move {
                let count: i64 = tx
                    .scalar(
                        sqlx::query_scalar(
                            "SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = $1",
                        )
                        .bind(e.tenant_id.as_str()),
                    )
                    .await?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= max_per_tenant {
                    return Err(StoreError::Conflict {
                        constraint: "webhook_endpoints_per_tenant".to_owned(),
                    });
                }
                tx.execute(sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, status, \
                 disabled_reason, disabled_at, secret, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(e.id.as_str())
            .bind(e.tenant_id.as_str())
            .bind(e.url.as_str())
            .bind(e.description.as_ref().map(Description::as_str))
            .bind(e.events.to_words())
            .bind(e.status.as_str())
            .bind(e.disabled_reason.map(DisabledReason::as_str))
            .bind(e.disabled_at.map(Timestamp::unix_micros))
            .bind(new.sealed_secret.as_str())
            .bind(e.created_at.unix_micros())
            .bind(e.updated_at.unix_micros())).await?;
                Ok(())
            })
        })
        .await?;
        Ok(e.clone())
    }

    async fn webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> StoreResult<WebhookEndpoint> {
        let db = self.database();
        let sql = concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        );
        db.row(
            || sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str()),
            endpoint_from_row,
        )
        .await
    }

    async fn list_webhook_endpoints(&self, tenant: &TenantId) -> StoreResult<Vec<WebhookEndpoint>> {
        let db = self.database();
        let sql = concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id"
        );
        db.rows(|| sqlx::query(sql).bind(tenant.as_str()), endpoint_from_row)
            .await
    }

    async fn update_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        change: &EndpointChange,
        at: Timestamp,
    ) -> StoreResult<WebhookEndpoint> {
        let db = self.database();
        db.write("update_webhook_endpoint", |tx| {
            Box::pin(async move {
                let current = endpoint_in(tx, tenant, id).await?;
                let url = change.url.clone().unwrap_or(current.url.clone());
                let description = match &change.description {
                    Some(next) => next.clone(),
                    None => current.description.clone(),
                };
                let events = change.events.clone().unwrap_or(current.events.clone());
                let (status, reason, disabled_at) = match change.status {
                    None => (current.status, current.disabled_reason, current.disabled_at),
                    Some((status, _)) if status == current.status => {
                        (current.status, current.disabled_reason, current.disabled_at)
                    }
                    Some((EndpointStatus::Enabled, _)) => (EndpointStatus::Enabled, None, None),
                    Some((EndpointStatus::Disabled, reason)) => {
                        (EndpointStatus::Disabled, reason, Some(at))
                    }
                };
                tx.execute(
                    sqlx::query(
                        "UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, \
                 status = $6, disabled_reason = $7, disabled_at = $8, updated_at = $9 \
                 WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(url.as_str())
                    .bind(description.as_ref().map(Description::as_str))
                    .bind(events.to_words())
                    .bind(status.as_str())
                    .bind(reason.map(DisabledReason::as_str))
                    .bind(disabled_at.map(Timestamp::unix_micros))
                    .bind(at.unix_micros()),
                )
                .await?;
                let updated = endpoint_in(tx, tenant, id).await?;

                Ok(updated)
            })
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        sealed_secret: &str,
        previous_until: Timestamp,
        at: Timestamp,
    ) -> StoreResult<WebhookEndpoint> {
        let db = self.database();
        db.write("rotate_webhook_secret", |tx| {
            Box::pin(async move {
                let result = tx.execute(sqlx::query(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $4, \
                 secret = $3, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(sealed_secret)
            .bind(previous_until.unix_micros())
            .bind(at.unix_micros())).await?;
                if result == 0 {
                    return Err(StoreError::NotFound);
                }
                let updated = endpoint_in(tx, tenant, id).await?;

                Ok(updated)
            })
        })
        .await
    }

    async fn delete_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> StoreResult<()> {
        let db = self.database();
        db.write("delete_webhook_endpoint", |tx| {
            Box::pin(async move {
                let result = tx
                    .execute(
                        sqlx::query(
                            "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(tenant.as_str())
                        .bind(id.as_str()),
                    )
                    .await?;
                if result == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
        })
        .await
    }

    async fn endpoint_secrets(
        &self,
        ids: &[WebhookEndpointId],
        now: Timestamp,
    ) -> StoreResult<Vec<EndpointSecrets>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.database();
        let mut q = Filtered::new(
            "SELECT e.id, e.tenant_id, e.url, e.description, e.events, e.status, \
             e.disabled_reason, e.disabled_at, e.previous_expires_at, e.created_at, e.updated_at, \
             e.secret, e.previous_secret, k.data_key \
             FROM webhook_endpoints e LEFT JOIN tenant_keys k ON k.tenant_id = e.tenant_id \
             WHERE e.id IN (",
        );
        for (i, id) in ids.iter().enumerate() {
            let p = q.arg(Arg::Text(id.to_string()));
            q.push(if i == 0 { "" } else { ", " });
            q.push(&p);
        }
        q.push(")");
        let rows = db.fetch_all(|| q.build()).await?;
        rows.iter()
            .map(|row| {
                let endpoint = endpoint_from_row(row)?;
                let previous_valid = endpoint
                    .previous_secret_expires_at
                    .is_some_and(|until| now < until);
                Ok(EndpointSecrets {
                    sealed_secret: column(row, "secret")?,
                    sealed_previous: if previous_valid {
                        column(row, "previous_secret")?
                    } else {
                        None
                    },
                    tenant_key: column(row, "data_key")?,
                    endpoint,
                })
            })
            .collect()
    }

    async fn disable_failing_endpoint(
        &self,
        id: &WebhookEndpointId,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let db = self.database();
        db.write("disable_failing_endpoint", |tx| {
            Box::pin(async move {
                let result = tx.execute(sqlx::query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'failing', \
                 disabled_at = $2, updated_at = $2 WHERE id = $1 AND status = 'enabled'",
            )
            .bind(id.as_str())
            .bind(at.unix_micros())).await?;

                Ok(result == 1)
            })
        })
        .await
    }

    async fn tenant_data_key(&self, tenant: &TenantId) -> StoreResult<Option<String>> {
        let db = self.database();
        db.optional_scalar(|| {
            sqlx::query_scalar("SELECT data_key FROM tenant_keys WHERE tenant_id = $1")
                .bind(tenant.as_str())
        })
        .await
    }

    async fn ensure_tenant_data_key(
        &self,
        tenant: &TenantId,
        candidate: &str,
    ) -> StoreResult<String> {
        let db = self.database();
        db.write("ensure_tenant_data_key", |tx| {
            Box::pin(async move {
                tx.execute(sqlx::query(
                "INSERT INTO tenant_keys (tenant_id, data_key, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(candidate)
            .bind(Timestamp::now().unix_micros())).await?;
                let stored: String = tx
                    .scalar(
                        sqlx::query_scalar("SELECT data_key FROM tenant_keys WHERE tenant_id = $1")
                            .bind(tenant.as_str()),
                    )
                    .await?;

                Ok(stored)
            })
        })
        .await
    }
}
