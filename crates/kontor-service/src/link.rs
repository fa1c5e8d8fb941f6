//! Linking a bank account: the tenant creates a connection and sends the user to its connect
//! URL; the user picks a bank (unless the tenant did), is sent to the bank's SCA, and comes back
//! through the callback, which is bound to the connection by a single-use, expiring state. Every
//! ending — success, cancel, failure, a lapsed link — sends the user back to the tenant with the
//! connection's id and status; only a callback that names no connection at all cannot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kontor_banks::{Callback, ConsentOutcome, ConsentRequest, ScaPreference, ScaStep};
use kontor_domain::bank::BankId;
use kontor_domain::connection::{
    Access, Connection, ConnectionEvent, ConnectionStatus, FailureReason, Language, NewConnection,
};
use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, TenantId, UserId};
use kontor_store::Transition;
use url::Url;

use crate::directory::BankEntry;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::schedule;
use crate::tokens::{hash_token, random_token, token_matches};
use crate::vault::{context, open_json, seal_json};

/// What a tenant asks for when it starts linking.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub user_id: UserId,
    pub bank_id: Option<BankId>,
    pub redirect_uri: String,
    pub access: Access,
    pub language: Option<Language>,
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
    pub tenant_name: String,
    /// The bank the tenant chose, if it did.
    pub bank: Option<BankEntry>,
    /// The banks to choose from, when it did not.
    pub banks: Vec<BankEntry>,
    /// How long access will last, in days.
    pub valid_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaChoice {
    Redirect,
    /// Approve in the banking app; the bank needs the user's login name.
    Decoupled {
        psu_id: String,
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
        if let Some(bank) = &request.bank_id
            && self.directory().get(bank).is_none()
        {
            return Err(ServiceError::invalid(
                "unknown_bank",
                format!("no bank {bank} in the directory"),
            ));
        }
        let cell = self.cell(request.user_id.region())?;
        let token = random_token();
        let new = NewConnection {
            id: ConnectionId::generate(request.user_id.region()),
            tenant_id: tenant.clone(),
            user_id: request.user_id,
            bank_id: request.bank_id,
            access: request.access,
            redirect_uri: request.redirect_uri,
            language: request.language,
            connect_token_hash: hash_token(&token),
            frequency_per_day: self
                .settings()
                .frequency_per_day
                .clamp(1, schedule::MAX_UNATTENDED_PER_DAY),
            created_at: Timestamp::now(),
        };
        let connection = cell
            .create_connection(&new)
            .await
            .map_err(ServiceError::from_store)?;
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

    async fn checked_link(
        &self,
        id: &ConnectionId,
        token: &str,
    ) -> ServiceResult<kontor_store::ConnectionSecrets> {
        let cell = self.cell_of(id)?;
        let secrets = cell
            .connection_secrets(id)
            .await
            .map_err(ServiceError::from_store)?;
        if !token_matches(token, &secrets.connect_token_hash) {
            return Err(ServiceError::NotFound);
        }
        Ok(secrets)
    }

    /// The connect page's content, for a holder of the connect token.
    pub async fn link_page(&self, id: &ConnectionId, token: &str) -> ServiceResult<LinkPage> {
        let connection = self.checked_link(id, token).await?.connection;
        let tenant_name = self
            .control()
            .tenant(&connection.tenant_id)
            .await
            .map_err(ServiceError::from_store)?
            .name
            .to_string();
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
            bank,
            banks,
            valid_days,
        })
    }

    /// Ends a pending connection with `reason` (and its event); the user goes back to the tenant.
    pub(crate) async fn fail_pending(
        &self,
        connection: &Connection,
        reason: FailureReason,
    ) -> ServiceResult<NextStep> {
        let cell = self.cell_of(&connection.id)?;
        let now = Timestamp::now();
        let event_kind = if reason == FailureReason::LinkExpired {
            ConnectionEvent::Expired
        } else {
            ConnectionEvent::Failed
        };
        let event_type = if reason == FailureReason::LinkExpired {
            EventType::ConnectionExpired
        } else {
            EventType::ConnectionFailed
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
            event_type,
            serde_json::json!({ "connection_id": connection.id, "reason": reason.as_str() }),
        );
        let failed = cell
            .transition(&connection.id, &change, Some(&event))
            .await
            .map_err(ServiceError::from_store)?;
        tracing::info!(connection.id = %connection.id, reason = reason.as_str(), "linking failed");
        Ok(NextStep::Tenant {
            url: redirect_for(&failed)?,
            activated: None,
        })
    }

    /// Where to send a user whose link is no longer pending.
    fn settled(connection: &Connection) -> ServiceResult<NextStep> {
        Ok(NextStep::Tenant {
            url: redirect_for(connection)?,
            activated: None,
        })
    }

    /// The user chose a bank (or confirmed the tenant's) and how to authenticate: create the
    /// consent at the bank and send them on.
    pub async fn start_link(
        &self,
        id: &ConnectionId,
        token: &str,
        bank_id: &BankId,
        sca: ScaChoice,
        psu_ip: Option<IpAddr>,
    ) -> ServiceResult<NextStep> {
        let connection = self.checked_link(id, token).await?.connection;
        if connection.status != ConnectionStatus::Pending {
            return Self::settled(&connection);
        }
        if connection
            .bank_id
            .as_ref()
            .is_some_and(|chosen| chosen != bank_id)
        {
            return Err(ServiceError::invalid(
                "unknown_bank",
                "this link is for another bank",
            ));
        }
        let entry = self
            .directory()
            .get(bank_id)
            .ok_or_else(|| ServiceError::invalid("unknown_bank", format!("no bank {bank_id}")))?;
        let connector = self
            .directory()
            .connector(bank_id)
            .ok_or(ServiceError::NotFound)?;
        let sca = match sca {
            ScaChoice::Decoupled { psu_id } if entry.profile.decoupled_sca => {
                ScaPreference::Decoupled { psu_id }
            }
            _ => ScaPreference::Redirect,
        };
        let state = format!("{}.{}", connection.id, random_token());
        let now = Timestamp::now();
        let valid_until =
            schedule::utc_day(now.plus_seconds(entry.profile.standard.max_consent_days() * 86_400));
        let request = ConsentRequest {
            access: kontor_banks::Access {
                accounts: connection.access.accounts,
                balances: connection.access.balances,
                transactions: connection.access.transactions,
            },
            valid_until,
            frequency_per_day: connection.frequency_per_day,
            redirect_uri: self.callback_url()?,
            state: state.clone(),
            sca,
            psu_ip,
        };
        let started = match connector.start_consent(&request).await {
            Ok(started) => started,
            Err(err) => {
                tracing::warn!(connection.id = %id, bank.id = %bank_id, error = %err, "consent creation failed");
                let reason = if err.is_transient() {
                    FailureReason::BankUnavailable
                } else {
                    FailureReason::BankRejected
                };
                return self.fail_pending(&connection, reason).await;
            }
        };
        let cell = self.cell_of(id)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = seal_json(&key, &started.session, &context::session(id))?;
        let expires = now.plus_seconds(self.settings().state_ttl_seconds);
        cell.begin_authorisation(id, bank_id, &hash_token(&state), expires, &sealed, now)
            .await
            .map_err(ServiceError::from_store)?;
        tracing::info!(connection.id = %id, bank.id = %bank_id, "user sent to the bank");
        Ok(match started.sca {
            ScaStep::Redirect { url } => NextStep::Bank(url),
            ScaStep::Decoupled { .. } => NextStep::Wait,
        })
    }

    pub fn callback_url(&self) -> ServiceResult<Url> {
        self.settings()
            .public_url
            .join("connect/callback")
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The user came back from the bank. `params` is the callback's query.
    pub async fn link_callback(&self, params: BTreeMap<String, String>) -> ServiceResult<NextStep> {
        let state = params.get("state").cloned().unwrap_or_default();
        let id = state
            .split_once('.')
            .and_then(|(id, _)| ConnectionId::parse(id).ok())
            .ok_or_else(|| ServiceError::invalid("invalid_state", "the link is not valid"))?;
        let cell = self.cell_of(&id)?;
        let now = Timestamp::now();
        let secrets = match cell.take_state(&id, &hash_token(&state), now).await {
            Ok(secrets) => secrets,
            Err(kontor_store::StoreError::NotFound) => {
                // A replayed or late callback: never a dead end for a known connection.
                let current = cell
                    .connection_secrets(&id)
                    .await
                    .map_err(ServiceError::from_store)?
                    .connection;
                return if current.status == ConnectionStatus::Pending {
                    self.fail_pending(&current, FailureReason::LinkExpired)
                        .await
                } else {
                    Self::settled(&current)
                };
            }
            Err(err) => return Err(ServiceError::from_store(err)),
        };
        let connection = secrets.connection;
        if connection.status != ConnectionStatus::Pending {
            return Self::settled(&connection);
        }
        let bank = connection
            .bank_id
            .clone()
            .ok_or_else(|| ServiceError::Internal("no bank".into()))?;
        let connector = self
            .directory()
            .connector(&bank)
            .ok_or(ServiceError::NotFound)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = secrets
            .session
            .ok_or_else(|| ServiceError::Internal("no session".into()))?;
        let mut session: kontor_banks::ConsentSession =
            open_json(&key, &sealed, &context::session(&id))?;
        let cancelled = params.get("error").is_some_and(|e| e == "access_denied");
        let outcome = connector
            .complete_consent(&mut session, &Callback { params })
            .await;
        match self
            .settle(&connection, outcome, &mut session, cancelled)
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

    /// Turns a bank's answer about a consent into the connection's next state.
    async fn settle(
        &self,
        connection: &Connection,
        outcome: Result<ConsentOutcome, kontor_banks::BankError>,
        session: &mut kontor_banks::ConsentSession,
        cancelled: bool,
    ) -> ServiceResult<NextStep> {
        match outcome {
            Ok(ConsentOutcome::Active { valid_until }) => {
                self.activate(connection, valid_until, session).await
            }
            Ok(ConsentOutcome::Pending) => Ok(NextStep::Wait),
            Ok(ConsentOutcome::Rejected { .. }) => {
                let reason = if cancelled {
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
        let cell = self.cell_of(&connection.id)?;
        let bank = connection
            .bank_id
            .as_ref()
            .and_then(|b| self.directory().get(b));
        let now = Timestamp::now();
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
            EventType::ConnectionActive,
            serde_json::json!({
                "connection_id": connection.id,
                "bank_id": connection.bank_id,
                "valid_until": valid_until,
            }),
        );
        let active = cell
            .transition(&connection.id, &change, Some(&event))
            .await
            .map_err(ServiceError::from_store)?;
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
        let (Some(bank), Some(sealed)) = (connection.bank_id.clone(), secrets.session) else {
            return Ok(NextStep::Wait);
        };
        if secrets
            .state_expires_at
            .is_some_and(|until| until <= Timestamp::now())
        {
            return self
                .fail_pending(&connection, FailureReason::LinkExpired)
                .await;
        }
        let cell = self.cell_of(id)?;
        let connector = self
            .directory()
            .connector(&bank)
            .ok_or(ServiceError::NotFound)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let mut session: kontor_banks::ConsentSession =
            open_json(&key, &sealed, &context::session(id))?;
        let outcome = connector.consent_status(&mut session).await;
        if matches!(outcome, Err(ref e) if e.is_transient()) {
            return Ok(NextStep::Wait);
        }
        self.settle(&connection, outcome, &mut session, false).await
    }
}
