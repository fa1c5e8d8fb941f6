//! The connect page: what it shows a holder of the connect token (the tenant, what is shared
//! and for how long, the banks), and the bank login name the tenant bound, opened.

use kontor_domain::ConnectionId;

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::link::{LinkPage, MAX_DECOUPLED_STARTS};
use crate::tokens::token_matches;
use crate::vault::{context, open_json};

impl Hub {
    pub(crate) async fn checked_link(
        &self,
        id: &ConnectionId,
        token: &str,
    ) -> ServiceResult<kontor_store::ConnectionSecrets> {
        let cell = self.cell_of(id).await?;
        let secrets = cell.connection_secrets(id).await?;
        if !token_matches(token, &secrets.connect_token_hash) {
            return Err(ServiceError::NotFound);
        }
        Ok(secrets)
    }

    /// The connect page's content, for a holder of the connect token.
    pub async fn link_page(&self, id: &ConnectionId, token: &str) -> ServiceResult<LinkPage> {
        let secrets = self.checked_link(id, token).await?;
        let psu_bound = secrets.psu_id.is_some();
        let decoupled_starts_left = MAX_DECOUPLED_STARTS.saturating_sub(secrets.decoupled_starts);
        let connection = secrets.connection;
        let (tenant_name, branding) = self.tenant_face(&connection.tenant_id).await?;
        let bank = connection
            .bank_id
            .as_ref()
            .and_then(|b| self.directory().get(b))
            .cloned();
        let banks = if bank.is_none() {
            self.directory().list(None).into_iter().cloned().collect()
        } else {
            Vec::new()
        };
        // The chosen bank's rule; otherwise the longest any listed bank of the user's country
        // allows (the page says "up to").
        let home = match connection.user_id.region().as_str() {
            "uk" => "GB".to_owned(),
            other => other.to_ascii_uppercase(),
        };
        let valid_days = match &bank {
            Some(b) => b.profile.standard.max_consent_days(),
            None => banks
                .iter()
                .filter(|b| b.profile.country == home)
                .chain(banks.iter())
                .map(|b| b.profile.standard.max_consent_days())
                .next()
                .unwrap_or(90),
        };
        Ok(LinkPage {
            connection,
            tenant_name,
            branding,
            bank,
            banks,
            valid_days,
            psu_bound,
            decoupled_starts_left,
        })
    }

    /// The bank login name the tenant bound, opened.
    pub(crate) async fn bound_psu_id(
        &self,
        secrets: &kontor_store::ConnectionSecrets,
    ) -> ServiceResult<Option<String>> {
        let Some(sealed) = &secrets.psu_id else {
            return Ok(None);
        };
        let id = &secrets.connection.id;
        let key = self
            .vault()
            .user_key(self.cell_of(id).await?, &secrets.connection.user_id)
            .await?;
        open_json(&key, sealed, &context::psu_id(id)).map(Some)
    }
}
