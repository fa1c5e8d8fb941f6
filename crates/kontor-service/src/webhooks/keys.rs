//! Sealing webhook signing secrets. Endpoints belong to a tenant, not a user, so their secrets
//! are sealed with a per-tenant data key, kept in the control database wrapped by the same
//! keyring that wraps users' keys (bound to the tenant id), and rotated with it.

use kontor_crypto::{DataKey, WebhookSecret, WrappedKey};
use kontor_domain::{TenantId, WebhookEndpointId};
use kontor_store::ControlStore;

use crate::error::{ServiceError, ServiceResult};
use crate::vault::Vault;

/// The sealing context of an endpoint's secrets: the current and the previous one share it, so
/// a rotation moves the sealed current secret to the previous slot without opening it.
pub(crate) fn secret_context(id: &WebhookEndpointId) -> String {
    format!("webhook_endpoints/{id}/secret")
}

impl Vault {
    /// The tenant's data key, made (and stored, wrapped) on first use.
    pub async fn tenant_key(
        &self,
        control: &dyn ControlStore,
        tenant: &TenantId,
    ) -> ServiceResult<DataKey> {
        let owner = tenant.as_str();
        if let Some(wrapped) = control.tenant_data_key(tenant).await? {
            return self.open_tenant_key(&wrapped, tenant);
        }
        let (key, wrapped) = self.keyring().new_data_key(owner)?;
        let stored = control
            .ensure_tenant_data_key(tenant, wrapped.as_str())
            .await?;
        if stored == wrapped.as_str() {
            Ok(key)
        } else {
            // Another request made the tenant's key first; use theirs.
            self.open_tenant_key(&stored, tenant)
        }
    }

    /// Unwraps a tenant's data key read from the control database.
    pub fn open_tenant_key(&self, wrapped: &str, tenant: &TenantId) -> ServiceResult<DataKey> {
        Ok(self.keyring().unwrap_key(
            &WrappedKey::from_stored(wrapped.to_owned()),
            tenant.as_str(),
        )?)
    }
}

pub(crate) fn seal_secret(
    key: &DataKey,
    id: &WebhookEndpointId,
    secret: &WebhookSecret,
) -> ServiceResult<String> {
    Ok(key.seal(secret.reveal().as_bytes(), &secret_context(id))?)
}

pub(crate) fn open_secret(
    key: &DataKey,
    id: &WebhookEndpointId,
    sealed: &str,
) -> ServiceResult<WebhookSecret> {
    let bytes = key.open(sealed, &secret_context(id))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ServiceError::Internal(format!("the secret of {id} is not text")))?;
    Ok(WebhookSecret::parse(&text)?)
}
