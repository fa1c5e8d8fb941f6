//! Tenants and their API clients, kept in the control database.

use async_trait::async_trait;
use kontor_domain::branding::Branding;
use kontor_domain::tenant::{ApiClient, Scopes, Tenant, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, CertificateBinding, CertificateThumbprint, TenantId};

use crate::error::StoreResult;

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: TenantName,
    pub created_at: Timestamp,
}

pub use kontor_domain::tenant::SecretHash;

#[derive(Debug, Clone)]
pub struct NewApiClient {
    pub id: ApiClientId,
    pub tenant_id: TenantId,
    pub secret_hash: SecretHash,
    pub scopes: Scopes,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant together with its first API client, atomically.
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        first_client: &NewApiClient,
    ) -> StoreResult<Tenant>;
    async fn tenant(&self, id: &TenantId) -> StoreResult<Tenant>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// The redirect URIs the tenant allows (normalised), in the order they were set; empty when
    /// it allows any.
    async fn redirect_uris(&self, tenant: &TenantId) -> StoreResult<Vec<String>>;
    /// Replaces the tenant's allowed redirect URIs (an empty list allows any), atomically.
    /// `NotFound` when there is no such tenant.
    async fn set_redirect_uris(
        &self,
        tenant: &TenantId,
        uris: &[String],
        at: Timestamp,
    ) -> StoreResult<()>;
    /// The tenant's branding; all parts empty when none was set. `NotFound` for no tenant.
    async fn branding(&self, tenant: &TenantId) -> StoreResult<Branding>;
    /// Replaces the tenant's branding as a whole. `NotFound` for no tenant.
    async fn set_branding(
        &self,
        tenant: &TenantId,
        branding: &Branding,
        at: Timestamp,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait ApiClientStore: Send + Sync {
    /// Fails with `NotFound` when the tenant does not exist.
    async fn create_client(&self, client: &NewApiClient) -> StoreResult<ApiClient>;
    async fn client(&self, id: &ApiClientId) -> StoreResult<ApiClient>;
    /// The client with its secret hash, for authenticating a token request.
    async fn client_with_secret(&self, id: &ApiClientId) -> StoreResult<(ApiClient, SecretHash)>;
    /// Marks the client revoked; revoking twice keeps the first revocation time.
    async fn revoke_client(&self, id: &ApiClientId, at: Timestamp) -> StoreResult<ApiClient>;
    async fn list_clients(&self, tenant: &TenantId) -> StoreResult<Vec<ApiClient>>;
    /// The certificates the client is bound to, oldest first; empty for an unbound client (or
    /// one that does not exist).
    async fn client_certificates(&self, id: &ApiClientId) -> StoreResult<Vec<CertificateBinding>>;
    /// Binds the client to a certificate; `false` when it already was. `NotFound` when there is
    /// no such client; `Conflict` when it already has [`MAX_CLIENT_CERTIFICATES`].
    async fn bind_certificate(
        &self,
        id: &ApiClientId,
        thumbprint: &CertificateThumbprint,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes one binding; `false` when there was none.
    async fn unbind_certificate(
        &self,
        id: &ApiClientId,
        thumbprint: &CertificateThumbprint,
    ) -> StoreResult<bool>;
}

/// Certificates one client may be bound to at once: enough to overlap a rotation, few enough
/// that the check stays a short list.
pub const MAX_CLIENT_CERTIFICATES: usize = 10;
