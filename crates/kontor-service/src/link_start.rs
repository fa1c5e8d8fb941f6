//! The user chose a bank on the connect page: the consent is created at the bank and the user
//! sent to its SCA, or — decoupled SCA — asked to approve in the banking app. Decoupled starts
//! send a request to whoever the login name belongs to, so they are guarded: the tenant may
//! bind the login name (the page then does not ask), a link makes at most
//! [`MAX_DECOUPLED_STARTS`], and the page answers the same whether the bank knows the name or
//! not.

use std::net::IpAddr;

use kontor_banks::{ConsentRequest, ScaPreference, ScaStep};
use kontor_domain::ConnectionId;
use kontor_domain::bank::BankId;
use kontor_domain::connection::{ConnectionStatus, FailureReason};

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::link::{MAX_DECOUPLED_STARTS, NextStep, ScaChoice};
use crate::schedule;
use crate::tokens::{hash_token, random_token};
use crate::vault::{context, seal_json};

impl Hub {
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
        let secrets = self.checked_link(id, token).await?;
        let connection = secrets.connection.clone();
        if connection.status != ConnectionStatus::Pending {
            return Self::settled(&connection);
        }
        if connection
            .bank_id
            .as_ref()
            .is_some_and(|chosen| chosen != bank_id)
        {
            return Err(ServiceError::invalid(
                ErrorCode::UnknownBank,
                "this link is for another bank",
            ));
        }
        let entry = self.directory().get(bank_id).ok_or_else(|| {
            ServiceError::invalid(ErrorCode::UnknownBank, format!("no bank {bank_id}"))
        })?;
        let connector = self
            .directory()
            .connector(bank_id, &connection.tenant_id)
            .ok_or(ServiceError::NotFound)?;
        let sca = match sca {
            ScaChoice::Decoupled { psu_id: typed } if entry.profile.decoupled_sca => {
                // The login name the tenant bound wins over anything posted: the page does not
                // ask for it, and a forged form cannot swap it.
                match self.bound_psu_id(&secrets).await?.or(typed) {
                    Some(psu_id) => ScaPreference::Decoupled { psu_id },
                    None => ScaPreference::Redirect,
                }
            }
            _ => ScaPreference::Redirect,
        };
        let decoupled = matches!(sca, ScaPreference::Decoupled { .. });
        let cell = self.cell_of(id).await?;
        if decoupled && !cell.count_decoupled_start(id, MAX_DECOUPLED_STARTS).await? {
            tracing::info!(connection.id = %id, "decoupled starts of this link used up");
            return Err(ServiceError::conflict(
                ErrorCode::DecoupledStartsUsed,
                "this link has sent all the approval requests it may; sign in at the bank instead",
            ));
        }
        let state = format!("{}.{}", connection.id, random_token());
        let now = self.clock().now();
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
            // A bank that refuses a decoupled start mostly says it does not know the login
            // name. Answering that differently from a start that reached someone's app would
            // tell who banks there; the user sees the same waiting page either way, and may try
            // again (a typo) while the link has starts left, or sign in at the bank.
            Err(err) if decoupled && !err.is_transient() => {
                tracing::info!(connection.id = %id, bank.id = %bank_id, error = %err, "decoupled start refused by the bank");
                return Ok(NextStep::Wait);
            }
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
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = seal_json(&key, &started.session, &context::session(id))?;
        let expires = now.plus_seconds(self.settings().state_ttl_seconds);
        cell.begin_authorisation(id, bank_id, &hash_token(&state), expires, &sealed, now)
            .await?;
        tracing::info!(connection.id = %id, bank.id = %bank_id, "user sent to the bank");
        Ok(match started.sca {
            ScaStep::Redirect { url } => NextStep::Bank(url),
            ScaStep::Decoupled { .. } => NextStep::Wait,
        })
    }
}
