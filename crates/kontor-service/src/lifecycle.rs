//! A connection after linking: the tenant revokes it or (UK) reconfirms it; the worker expires
//! lapsed consents, tells tenants before they lapse, and closes links nobody finished.

use kontor_banks::BankError;
use kontor_domain::bank::Standard;
use kontor_domain::connection::{Connection, ConnectionEvent, ConnectionStatus, FailureReason};
use kontor_domain::event::payload::{ConnectionEnded, ConnectionValidity, EndedBy};
use kontor_domain::event::{Event, EventData};
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, TenantId};
use kontor_store::Transition;

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::link::NextStep;
use crate::vault::{context, open_json};

/// How many connections one sweep of a job handles per cell.
const SWEEP_BATCH: usize = 100;

fn change(event: ConnectionEvent, at: Timestamp) -> Transition {
    Transition {
        event,
        failure_reason: None,
        valid_until: None,
        session: None,
        next_sync_at: None,
        at,
    }
}

/// Counts a consent that lapsed: at the end of its validity (`validity`) or early, as the
/// bank said (`bank`).
pub(crate) fn count_expiry(region: &kontor_domain::Region, by: &'static str) {
    metrics::counter!(
        "kontor_consents_expired_total",
        "region" => region.as_str().to_owned(),
        "by" => by,
    )
    .increment(1);
}

impl Hub {
    /// Withdraws the consent at the bank, then here. Revoking a connection that is already over
    /// changes nothing. A bank that cannot be reached leaves the connection active (the caller
    /// may retry): access the user withdrew must end at the bank too.
    pub async fn revoke(&self, tenant: &TenantId, id: &ConnectionId) -> ServiceResult<Connection> {
        let cell = self.cell_of(id).await?;
        let connection = cell.connection(tenant, id).await?;
        if connection.status.is_terminal() {
            return Ok(connection);
        }
        let secrets = cell.connection_secrets(id).await?;
        if let (Some(bank), Some(sealed)) = (&connection.bank_id, &secrets.session)
            && let Some(connector) = self.directory().connector(bank, &connection.tenant_id)
        {
            let key = self.vault().user_key(cell, &connection.user_id).await?;
            let mut session: kontor_banks::ConsentSession =
                open_json(&key, sealed, &context::session(id))?;
            match connector.revoke(&mut session).await {
                Ok(()) | Err(BankError::ConsentInvalid { .. } | BankError::ConsentExpired) => {}
                Err(err) if connection.status == ConnectionStatus::Pending => {
                    // Nothing was ever authorised; the pending consent lapses at the bank.
                    tracing::info!(connection.id = %id, error = %err, "bank revocation of a pending consent failed");
                }
                Err(err) => return Err(err.into()),
            }
        }
        let event = Event::new(
            connection.tenant_id.clone(),
            &connection.user_id,
            EventData::ConnectionRevoked(ConnectionEnded::new(id.clone()).by(EndedBy::Tenant)),
        );
        let revoked = cell
            .transition(
                id,
                &change(ConnectionEvent::Revoked, self.clock().now()),
                Some(&event),
            )
            .await?;
        tracing::info!(connection.id = %id, "connection revoked");
        Ok(revoked)
    }

    /// UK Open Banking: the user reconfirmed the tenant's access (FCA PS21/19), which extends
    /// it by 90 days without new authentication at the bank.
    pub async fn reconfirm(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> ServiceResult<Connection> {
        let cell = self.cell_of(id).await?;
        let connection = cell.connection(tenant, id).await?;
        let standard = connection
            .bank_id
            .as_ref()
            .and_then(|b| self.directory().get(b))
            .map(|b| b.profile.standard);
        if standard != Some(Standard::UkOpenBanking) {
            return Err(ServiceError::conflict(
                ErrorCode::ReconfirmationNotApplicable,
                "only UK Open Banking connections are reconfirmed; others need a new connection",
            ));
        }
        if connection.status != ConnectionStatus::Active {
            return Err(ServiceError::conflict(
                ErrorCode::ConnectionNotActive,
                "the connection is not active",
            ));
        }
        let now = self.clock().now();
        let valid_until = now.plus_seconds(Standard::UkOpenBanking.max_consent_days() * 86_400);
        let event = Event::new(
            connection.tenant_id.clone(),
            &connection.user_id,
            EventData::ConnectionReconfirmed(ConnectionValidity {
                connection_id: id.clone(),
                valid_until,
            }),
        );
        let transition = Transition {
            valid_until: Some(valid_until),
            ..change(ConnectionEvent::Reconfirmed, now)
        };
        cell.transition(id, &transition, Some(&event))
            .await
            .map_err(ServiceError::from)
    }

    /// The user cancelled on the connect page, before going to the bank.
    pub async fn cancel_link(&self, id: &ConnectionId, token: &str) -> ServiceResult<NextStep> {
        let page = self.link_page(id, token).await?;
        if page.connection.status != ConnectionStatus::Pending {
            let url = crate::link::redirect_for(&page.connection)?;
            return Ok(NextStep::Tenant {
                url,
                activated: None,
            });
        }
        self.fail_pending(&page.connection, FailureReason::UserCancelled)
            .await
    }

    /// Expires active connections whose consent has lapsed. Returns how many.
    pub async fn expire_lapsed(&self, now: Timestamp) -> ServiceResult<usize> {
        let mut expired = 0;
        for (region, cell) in self.cells().iter() {
            for connection in cell.expiring_before(now, SWEEP_BATCH).await? {
                let event = Event::new(
                    connection.tenant_id.clone(),
                    &connection.user_id,
                    EventData::ConnectionExpired(
                        ConnectionEnded::new(connection.id.clone())
                            .valid_until(connection.valid_until),
                    ),
                );
                match cell
                    .transition(
                        &connection.id,
                        &change(ConnectionEvent::Expired, now),
                        Some(&event),
                    )
                    .await
                {
                    Ok(_) => {
                        expired += 1;
                        count_expiry(region.region(), "validity");
                    }
                    // Changed meanwhile (revoked, say): nothing to expire.
                    Err(kontor_store::StoreError::StateRefused { .. }) => {}
                    Err(err) => return Err(ServiceError::from(err)),
                }
            }
        }
        Ok(expired)
    }

    /// Tells tenants, once per validity period, that a consent lapses within the notice period.
    pub async fn announce_expiring(&self, now: Timestamp) -> ServiceResult<usize> {
        let horizon = now.plus_seconds(self.settings().expiry_notice_days * 86_400);
        let mut announced = 0;
        for (_, cell) in self.cells().iter() {
            for connection in cell.expiring_unnotified(horizon, SWEEP_BATCH).await? {
                let event = Event::new(
                    connection.tenant_id.clone(),
                    &connection.user_id,
                    EventData::ConnectionExpiring(ConnectionValidity {
                        connection_id: connection.id.clone(),
                        // Only connections with a validity end within the notice period are
                        // announced.
                        valid_until: connection.valid_until.unwrap_or(horizon),
                    }),
                );
                cell.mark_expiry_notified(&connection.id, now, &event)
                    .await?;
                announced += 1;
            }
        }
        Ok(announced)
    }

    /// Closes connections whose connect link lapsed before the user finished.
    pub async fn abandon_stale_links(&self, now: Timestamp) -> ServiceResult<usize> {
        let cutoff = now.plus_seconds(-self.settings().link_ttl_seconds);
        let mut closed = 0;
        for (_, cell) in self.cells().iter() {
            for connection in cell.pending_before(cutoff, SWEEP_BATCH).await? {
                match self
                    .fail_pending(&connection, FailureReason::LinkExpired)
                    .await
                {
                    Ok(_) => closed += 1,
                    Err(ServiceError::Store(kontor_store::StoreError::StateRefused { .. })) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(closed)
    }
}
