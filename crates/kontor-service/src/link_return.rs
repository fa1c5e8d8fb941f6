//! The user's way back from the bank: the callback (bound to the connection by its single-use
//! state), the decoupled-SCA waiting page's polls, and what the bank's answer makes of the
//! connection (active with its first sync due, or ended with a reason).

use std::collections::BTreeMap;

use kontor_banks::{Callback, ConsentOutcome};
use kontor_domain::ConnectionId;
use kontor_domain::connection::{Connection, ConnectionEvent, ConnectionStatus, FailureReason};
use kontor_domain::event::payload::ConnectionActivated;
use kontor_domain::event::{Event, EventData};
use kontor_domain::time::Timestamp;
use kontor_store::Transition;
use url::Url;

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::link::{NextStep, redirect_for};
use crate::tokens::{hash_token, token_matches};
use crate::vault::{context, open_json, seal_json};

impl Hub {
    pub fn callback_url(&self) -> ServiceResult<Url> {
        self.settings()
            .public_url
            .join("connect/callback")
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The user came back from the bank. `params` is the callback's query.
    ///
    /// The state names the connection and carries a secret only the bank's redirect knows. A
    /// state whose secret is not the connection's own (forged, or of an attempt made before
    /// the latest) changes nothing and tells nothing: the same error as a state naming no
    /// connection. A genuine one is used once; after that it only brings the user back to the
    /// tenant (a reload, the back button); a genuine one that lapsed ends the link.
    pub async fn link_callback(&self, params: BTreeMap<String, String>) -> ServiceResult<NextStep> {
        let state = params.get("state").cloned().unwrap_or_default();
        let invalid = || ServiceError::invalid(ErrorCode::InvalidState, "the link is not valid");
        let id = state
            .split_once('.')
            .and_then(|(id, _)| ConnectionId::parse(id).ok())
            .ok_or_else(invalid)?;
        let cell = self.cell_of(&id).await.map_err(|_| invalid())?;
        let current = match cell.connection_secrets(&id).await {
            Ok(current) => current,
            Err(kontor_store::StoreError::NotFound) => return Err(invalid()),
            Err(err) => return Err(ServiceError::from(err)),
        };
        if !current
            .state_hash
            .as_deref()
            .is_some_and(|stored| token_matches(&state, stored))
        {
            tracing::warn!(connection.id = %id, "callback with a state that is not the connection's; ignored");
            return Err(invalid());
        }
        let now = self.clock().now();
        if current.connection.status != ConnectionStatus::Pending
            || current.state_spent_at.is_some()
        {
            return Self::settled(&current.connection);
        }
        if current.state_expires_at.is_none_or(|until| until <= now) {
            return self
                .fail_pending(&current.connection, FailureReason::LinkExpired)
                .await;
        }
        let secrets = match cell.take_state(&id, &hash_token(&state), now).await {
            Ok(secrets) => secrets,
            // Taken meanwhile by another copy of this callback: where that one left it.
            Err(kontor_store::StoreError::NotFound) => {
                let current = cell.connection_secrets(&id).await?;
                return Self::settled(&current.connection);
            }
            Err(err) => return Err(ServiceError::from(err)),
        };
        let connection = secrets.connection;
        if connection.status != ConnectionStatus::Pending {
            return Self::settled(&connection);
        }
        let connector = self.connection_connector(&connection)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = secrets
            .session
            .ok_or_else(|| ServiceError::Internal("no session".into()))?;
        let mut session: kontor_banks::ConsentSession =
            open_json(&key, &sealed, &context::session(&id))?;
        let outcome = connector
            .complete_consent(&mut session, &Callback { params })
            .await;
        match self
            .settle(&connection, outcome, &mut session, false)
            .await?
        {
            // The bank has not decided yet; the user goes back to the tenant, who sees the
            // connection pending (and, if the bank never decides, lapse).
            NextStep::Wait => Ok(NextStep::Tenant {
                url: redirect_for(&connection)?,
                activated: None,
            }),
            step => Ok(step),
        }
    }

    /// Turns a bank's answer about a consent into the connection's next state. `in_app`: the
    /// answer came from polling decoupled SCA, where a rejection is the user's own answer in
    /// the banking app.
    async fn settle(
        &self,
        connection: &Connection,
        outcome: Result<ConsentOutcome, kontor_banks::BankError>,
        session: &mut kontor_banks::ConsentSession,
        in_app: bool,
    ) -> ServiceResult<NextStep> {
        match outcome {
            Ok(ConsentOutcome::Active { valid_until }) => {
                self.activate(connection, valid_until, session).await
            }
            Ok(ConsentOutcome::Pending) => Ok(NextStep::Wait),
            // The same user action gets the same reason at every bank: a "no" at the bank (its
            // cancel button, or giving up after failed attempts, which no standard tells apart)
            // is the user's.
            Ok(ConsentOutcome::Rejected { by_user, .. }) => {
                let reason = if by_user || in_app {
                    FailureReason::UserCancelled
                } else {
                    FailureReason::ScaFailed
                };
                self.fail_pending(connection, reason).await
            }
            Ok(ConsentOutcome::Expired | ConsentOutcome::Revoked) => {
                self.fail_pending(connection, FailureReason::LinkExpired)
                    .await
            }
            Err(err) => {
                tracing::warn!(connection.id = %connection.id, error = %err, "completing the consent failed");
                let reason = if err.is_transient() {
                    FailureReason::BankUnavailable
                } else {
                    FailureReason::BankRejected
                };
                self.fail_pending(connection, reason).await
            }
        }
    }

    async fn activate(
        &self,
        connection: &Connection,
        bank_valid_until: Option<time::Date>,
        session: &kontor_banks::ConsentSession,
    ) -> ServiceResult<NextStep> {
        let cell = self.cell_of(&connection.id).await?;
        let bank = connection
            .bank_id
            .as_ref()
            .and_then(|b| self.directory().get(b));
        let now = self.clock().now();
        let max_days = bank.map_or(90, |b| b.profile.standard.max_consent_days());
        let ours = now.plus_seconds(max_days * 86_400);
        // A consent is valid through its last day; the hub never keeps it longer than the rules.
        let valid_until = bank_valid_until
            .and_then(|day| Timestamp::from_datetime(day.next_day()?.midnight().assume_utc()).ok())
            .map_or(ours, |theirs| theirs.min(ours));
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = seal_json(&key, session, &context::session(&connection.id))?;
        let change = Transition {
            event: ConnectionEvent::Authorised,
            failure_reason: None,
            valid_until: Some(valid_until),
            session: Some(sealed),
            // The first sync runs at once; scheduling it also lets a worker pick it up if this
            // process dies before it finishes.
            next_sync_at: Some(now),
            at: now,
        };
        let event = Event::new(
            connection.tenant_id.clone(),
            &connection.user_id,
            EventData::ConnectionActive(ConnectionActivated {
                connection_id: connection.id.clone(),
                bank_id: connection.bank_id.clone(),
                valid_until,
            }),
        );
        let active = cell
            .transition(&connection.id, &change, Some(&event))
            .await?;
        tracing::info!(connection.id = %connection.id, "connection active");
        Ok(NextStep::Tenant {
            url: redirect_for(&active)?,
            activated: Some(active.id),
        })
    }

    /// For the waiting page of decoupled SCA: asks the bank whether the user approved yet.
    pub async fn poll_link(&self, id: &ConnectionId, token: &str) -> ServiceResult<NextStep> {
        let secrets = self.checked_link(id, token).await?;
        let connection = secrets.connection;
        if connection.status != ConnectionStatus::Pending {
            return Self::settled(&connection);
        }
        let (Some(_), Some(sealed)) = (&connection.bank_id, secrets.session) else {
            return Ok(NextStep::Wait);
        };
        if secrets
            .state_expires_at
            .is_some_and(|until| until <= self.clock().now())
        {
            return self
                .fail_pending(&connection, FailureReason::LinkExpired)
                .await;
        }
        let cell = self.cell_of(id).await?;
        let connector = self.connection_connector(&connection)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let mut session: kontor_banks::ConsentSession =
            open_json(&key, &sealed, &context::session(id))?;
        let outcome = connector.consent_status(&mut session).await;
        if matches!(outcome, Err(ref e) if e.is_transient()) {
            return Ok(NextStep::Wait);
        }
        self.settle(&connection, outcome, &mut session, true).await
    }
}
