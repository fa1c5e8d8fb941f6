//! Linking a bank account: the tenant creates a connection (optionally binding the user's bank
//! login name) and sends the user to its connect URL (the page: `link_page`); the user picks a
//! bank (unless the tenant did) and is sent to the bank's SCA (`link_start`), and comes back
//! through the callback, which is bound to the connection by a single-use, expiring state
//! (`link_return`). Every ending — success, cancel, failure, a lapsed link — sends the user back
//! to the tenant with the connection's id and status; a callback whose state is not the
//! connection's own changes nothing and goes nowhere.

use kontor_domain::bank::BankId;
use kontor_domain::branding::Branding;
use kontor_domain::connection::{
    Access, Connection, ConnectionEvent, FailureReason, Language, NewConnection,
};
use kontor_domain::event::Event;
use kontor_domain::event::payload::ConnectionEnded;
use kontor_domain::{ConnectionId, TenantId, UserId};
use kontor_store::Transition;
use url::Url;

use crate::ErrorCode;
use crate::directory::BankEntry;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::schedule;
use crate::tokens::{hash_token, random_token};
use crate::vault::{context, seal_json};

/// Decoupled-SCA starts one connect link may make: each sends an approval request to someone's
/// banking app, so a link cannot be used to send them without end (the second is for a typo).
pub const MAX_DECOUPLED_STARTS: u32 = 2;

/// The longest bank login name accepted.
const MAX_PSU_ID_CHARS: usize = 100;

/// What a tenant asks for when it starts linking.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub user_id: UserId,
    pub bank_id: Option<BankId>,
    pub redirect_uri: String,
    pub access: Access,
    pub language: Option<Language>,
    /// The user's bank login name, from the tenant's own KYC: used for decoupled SCA, and the
    /// connect page then does not ask for it.
    pub psu_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CreatedLink {
    pub connection: Connection,
    pub connect_url: Url,
}

/// What the connect page shows.
#[derive(Debug, Clone)]
pub struct LinkPage {
    pub connection: Connection,
    /// The tenant's display name if it set one, else its name.
    pub tenant_name: String,
    /// The tenant's logo and accent colour for the page.
    pub branding: Branding,
    /// The bank the tenant chose, if it did.
    pub bank: Option<BankEntry>,
    /// The banks to choose from, when it did not.
    pub banks: Vec<BankEntry>,
    /// How long access will last, in days.
    pub valid_days: i64,
    /// The tenant bound the bank login name: the page does not ask for it.
    pub psu_bound: bool,
    /// Decoupled-SCA starts this link has left (see [`MAX_DECOUPLED_STARTS`]).
    pub decoupled_starts_left: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaChoice {
    Redirect,
    /// Approve in the banking app; the bank needs the user's login name: the one the tenant
    /// bound, else the one typed on the page.
    Decoupled {
        psu_id: Option<String>,
    },
}

/// Where the user's browser goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// To the bank's SCA pages.
    Bank(Url),
    /// Stay on the hub's waiting page while the user approves in the banking app.
    Wait,
    /// Back to the tenant, the linking over (successfully or not).
    Tenant {
        url: Url,
        activated: Option<ConnectionId>,
    },
}

/// The tenant's redirect URI with the connection's id, status and failure reason.
pub fn redirect_for(connection: &Connection) -> ServiceResult<Url> {
    let mut url = Url::parse(&connection.redirect_uri)
        .map_err(|e| ServiceError::Internal(format!("stored redirect_uri: {e}")))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("connection_id", connection.id.as_str());
        query.append_pair("status", connection.status.as_str());
        if let Some(reason) = connection.failure_reason {
            query.append_pair("reason", reason.as_str());
        }
    }
    Ok(url)
}

impl Hub {
    /// Starts linking: a pending connection and the URL to send the user to.
    pub async fn create_link(
        &self,
        tenant: &TenantId,
        request: LinkRequest,
    ) -> ServiceResult<CreatedLink> {
        self.check_redirect_uri(tenant, &request.redirect_uri)
            .await?;
        let psu_id = request.psu_id.as_deref().map(check_psu_id).transpose()?;
        if let Some(bank) = &request.bank_id
            && self.directory().get(bank).is_none()
        {
            return Err(ServiceError::invalid(
                ErrorCode::UnknownBank,
                format!("no bank {bank} in the directory"),
            ));
        }
        let cell = self.cell_for_user(Some(tenant), &request.user_id)?;
        let id = ConnectionId::generate(request.user_id.cell());
        let psu_id = match psu_id {
            Some(psu_id) => {
                // Only the tenant's own user gets a data key made here (the insert checks the
                // owner again, in its transaction).
                cell.user(tenant, &request.user_id).await?;
                let key = self.vault().user_key(cell, &request.user_id).await?;
                Some(seal_json(&key, &psu_id, &context::psu_id(&id))?)
            }
            None => None,
        };
        let token = random_token();
        let new = NewConnection {
            id,
            tenant_id: tenant.clone(),
            user_id: request.user_id,
            bank_id: request.bank_id,
            access: request.access,
            redirect_uri: request.redirect_uri,
            language: request.language,
            connect_token_hash: hash_token(&token),
            psu_id,
            frequency_per_day: self
                .settings()
                .frequency_per_day
                .clamp(1, schedule::MAX_UNATTENDED_PER_DAY),
            created_at: self.clock().now(),
        };
        let connection = cell.create_connection(&new).await?;
        let mut connect_url = self
            .settings()
            .public_url
            .join(&format!("connect/{}", connection.id))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        connect_url.query_pairs_mut().append_pair("token", &token);
        tracing::info!(connection.id = %connection.id, "connection created");
        Ok(CreatedLink {
            connection,
            connect_url,
        })
    }

    /// Ends a pending connection with `reason` (and its event); the user goes back to the tenant.
    pub(crate) async fn fail_pending(
        &self,
        connection: &Connection,
        reason: FailureReason,
    ) -> ServiceResult<NextStep> {
        let cell = self.cell_of(&connection.id).await?;
        let now = self.clock().now();
        let event_kind = if reason == FailureReason::LinkExpired {
            ConnectionEvent::Expired
        } else {
            ConnectionEvent::Failed
        };
        let change = Transition {
            event: event_kind,
            failure_reason: Some(reason),
            valid_until: None,
            session: None,
            next_sync_at: None,
            at: now,
        };
        let event = Event::new(
            connection.tenant_id.clone(),
            &connection.user_id,
            ConnectionEnded::new(connection.id.clone())
                .reason(Some(reason))
                .on(event_kind)
                .ok_or_else(|| ServiceError::Internal(format!("{event_kind:?} ends no link")))?,
        );
        let failed = cell
            .transition(&connection.id, &change, Some(&event))
            .await?;
        tracing::info!(connection.id = %connection.id, reason = reason.as_str(), "linking failed");
        Ok(NextStep::Tenant {
            url: redirect_for(&failed)?,
            activated: None,
        })
    }

    /// Where to send a user whose link is no longer pending.
    pub(crate) fn settled(connection: &Connection) -> ServiceResult<NextStep> {
        Ok(NextStep::Tenant {
            url: redirect_for(connection)?,
            activated: None,
        })
    }
}

/// A bank login name as the tenant gives it: trimmed, 1 to 100 characters, no control characters.
fn check_psu_id(raw: &str) -> ServiceResult<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_PSU_ID_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidPsuId,
            "psu_id must be 1 to 100 characters without control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psu_ids_are_trimmed_and_bounded() {
        assert_eq!(check_psu_id("  alice ").unwrap(), "alice");
        assert!(check_psu_id("   ").is_err());
        assert!(check_psu_id("a\nb").is_err());
        assert!(check_psu_id(&"x".repeat(101)).is_err());
        assert!(check_psu_id(&"ü".repeat(100)).is_ok());
    }
}
