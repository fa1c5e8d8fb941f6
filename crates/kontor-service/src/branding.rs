//! How a tenant appears on the hosted pages: its display name (else its name), logo and accent
//! colour, read once per page.

use kontor_domain::TenantId;
use kontor_domain::branding::Branding;

use crate::error::ServiceResult;
use crate::hub::Hub;

impl Hub {
    /// The name the pages show for a tenant, and its branding.
    pub(crate) async fn tenant_face(&self, tenant: &TenantId) -> ServiceResult<(String, Branding)> {
        let control = self.control();
        let name = control.tenant(tenant).await?.name;
        let branding = control.branding(tenant).await?;
        let shown = branding.display_name.as_ref().unwrap_or(&name).to_string();
        Ok((shown, branding))
    }
}
