//! Payments: accepted once per idempotency key, authorised by the user at their bank through the
//! hub's page, and followed at the bank until a final status. Initiation is split into recorded
//! phases (see `PaymentPhase`); every call to the bank that creates something carries the
//! payment's own idempotency key, so the worker can resume any payment a crash left between
//! phases without creating a second one at the bank.

mod authorise;
mod cancel;
mod legacy;
mod payer;
mod progress;

pub use authorise::{PaymentPage, payment_redirect};
pub use progress::PaymentSettings;

use kontor_banks::AccountReference;
use kontor_domain::bank::BankId;
use kontor_domain::event::payload::PaymentStatusChanged;
use kontor_domain::event::{Event, EventData};
use kontor_domain::iban::Iban;
use kontor_domain::money::Money;
use kontor_domain::payment::{Payment, PaymentPhase, PaymentScheme, PaymentStatus, StatusChange};
use kontor_domain::time::Timestamp;
use kontor_domain::{PaymentId, SortCode, TenantId, UkAccountNumber, UserId};
use kontor_store::{Idempotency, LegacyIdempotency, NewPayment, PaymentChange};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lookup;
use crate::tokens::{hash_token, random_token};
use crate::vault::{open_json, seal_json};

/// A validated payment request.
#[derive(Debug, Clone)]
pub struct PaymentOrder {
    pub user_id: UserId,
    pub bank_id: BankId,
    pub scheme: PaymentScheme,
    pub debtor: Option<AccountReference>,
    pub creditor_name: String,
    pub creditor: AccountReference,
    pub amount: Money,
    pub remittance: Option<String>,
    pub end_to_end_id: Option<String>,
    pub redirect_uri: String,
}

/// The personal parts of a payment, sealed with the user's data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    pub creditor_name: String,
    pub creditor: StoredAccount,
    /// The account paid from: named in the request, or, when it named none (UK), the one the
    /// bank reported after the user chose it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<StoredAccount>,
    /// The debtor account's name (its owner or owners), when the bank reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance: Option<String>,
    /// The token of the authorisation URL, kept so a replayed request can answer the same URL.
    pub authorize_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredAccount {
    Iban(String),
    SortCode {
        sort_code: String,
        account_number: String,
    },
}

impl StoredAccount {
    pub fn from_reference(reference: &AccountReference) -> Self {
        match reference {
            AccountReference::Iban(iban) => StoredAccount::Iban(iban.as_str().to_owned()),
            AccountReference::SortCode {
                sort_code,
                account_number,
            } => StoredAccount::SortCode {
                sort_code: sort_code.as_str().to_owned(),
                account_number: account_number.as_str().to_owned(),
            },
        }
    }

    pub fn to_reference(&self) -> ServiceResult<AccountReference> {
        Ok(match self {
            StoredAccount::Iban(raw) => AccountReference::Iban(
                Iban::parse(raw)
                    .map_err(|e| ServiceError::Internal(format!("stored IBAN: {e}")))?,
            ),
            StoredAccount::SortCode {
                sort_code,
                account_number,
            } => AccountReference::SortCode {
                sort_code: SortCode::parse(sort_code)
                    .map_err(|e| ServiceError::Internal(format!("stored sort code: {e}")))?,
                account_number: UkAccountNumber::parse(account_number)
                    .map_err(|e| ServiceError::Internal(format!("stored account number: {e}")))?,
            },
        })
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone)]
pub struct PaymentView {
    pub payment: Payment,
    pub details: PaymentDetails,
    pub history: Vec<StatusChange>,
    /// Where the user authorises it, while that is still to do.
    pub authorize_url: Option<Url>,
}

#[derive(Debug, Clone)]
pub struct AcceptedPayment {
    pub view: PaymentView,
    /// Whether this answers an earlier request with the same idempotency key.
    pub replayed: bool,
}

/// How long a request holds its idempotency key before another may take it over (the request
/// is presumed dead).
const KEY_LOCK_SECONDS: i64 = 30;

impl Hub {
    fn authorize_url(&self, id: &PaymentId, token: &str) -> ServiceResult<Url> {
        let mut url = self
            .settings()
            .public_url
            .join(&format!("pay/{id}"))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        url.query_pairs_mut().append_pair("token", token);
        Ok(url)
    }

    /// The hub's idempotency key towards the bank for this payment: stable, at most 40 characters.
    pub(crate) fn bank_idempotency_key(id: &PaymentId) -> String {
        let random = id.as_str().rsplit('_').next().unwrap_or(id.as_str());
        format!("kp-{random}")
    }

    /// Accepts a payment once per idempotency key (Stripe's semantics): the same key with the
    /// same request answers the first answer again; with another request, `idempotency_key_reused`;
    /// while the first is still running, `idempotency_key_in_use`. Nothing is sent to the bank
    /// until the user starts the authorisation.
    ///
    /// `request_digest` is the SHA-256 (hex) of the canonical request. Neither it nor `key` is
    /// stored: the control database keeps keyed hashes of both (`crate::lookup`), so nothing
    /// held there can be checked against a guessed request without the deployment's key.
    pub async fn accept_payment(
        &self,
        tenant: &TenantId,
        key: &str,
        request_digest: &str,
        order: PaymentOrder,
    ) -> ServiceResult<AcceptedPayment> {
        self.check_redirect_uri(tenant, &order.redirect_uri).await?;
        let root = self.vault().lookup_key(self.control()).await?;
        let stored_key = lookup::idempotency_key(root, tenant, key);
        let stored_hash = lookup::request_hash(root, tenant, request_digest);
        let plain_key = key;
        let key = stored_key.as_str();
        let candidate = PaymentId::generate(order.user_id.region());
        let now = Timestamp::now();
        let outcome = self
            .control()
            .begin_idempotent_with_legacy(
                tenant,
                &order.user_id,
                key,
                &stored_hash,
                Some(LegacyIdempotency {
                    key: plain_key,
                    request_hash: request_digest,
                }),
                candidate.as_str(),
                now.plus_seconds(KEY_LOCK_SECONDS),
                now,
            )
            .await
            .map_err(ServiceError::from_store)?;
        let (id, replayed) = match outcome {
            Idempotency::New => (candidate, false),
            Idempotency::Resume { resource_id } => (Self::parse_payment_id(&resource_id)?, false),
            Idempotency::Replay { resource_id } => (Self::parse_payment_id(&resource_id)?, true),
            Idempotency::InFlight => {
                return Err(ServiceError::conflict(
                    "idempotency_key_in_use",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                ));
            }
            Idempotency::Mismatch => {
                return Err(ServiceError::invalid(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                ));
            }
        };
        if replayed {
            let view = self.payment_view(tenant, &id).await?;
            return Ok(AcceptedPayment {
                view,
                replayed: true,
            });
        }
        match self.create_payment(tenant, &id, order, now).await {
            Ok(view) => {
                self.control()
                    .complete_idempotent(tenant, key, Timestamp::now())
                    .await
                    .map_err(ServiceError::from_store)?;
                tracing::info!(payment.id = %id, "payment accepted");
                Ok(AcceptedPayment {
                    view,
                    replayed: false,
                })
            }
            Err(err) => {
                // The key is freed for a corrected request only when the payment is known not to
                // exist. An error after its row committed (the view could not be read, or the
                // commit's answer was lost with the primary) keeps the key: once its lock
                // expires, the retry resumes this payment instead of creating a second one.
                if self.payment_absent(tenant, &id).await {
                    if let Err(release) = self.control().release_idempotent(tenant, key).await {
                        tracing::warn!(error = %release, "could not release an idempotency key");
                    }
                } else {
                    tracing::warn!(
                        payment.id = %id,
                        error = %err,
                        "payment may exist: its idempotency key is kept for the retry to resume"
                    );
                }
                Err(err)
            }
        }
    }

    /// Whether the cell says for certain that `id` was never created (a failed read is not
    /// certainty).
    async fn payment_absent(&self, tenant: &TenantId, id: &PaymentId) -> bool {
        match self.cell(id.region()) {
            Ok(cell) => matches!(
                cell.payment(tenant, id).await,
                Err(kontor_store::StoreError::NotFound)
            ),
            Err(_) => true,
        }
    }

    fn parse_payment_id(raw: &str) -> ServiceResult<PaymentId> {
        PaymentId::parse(raw).map_err(|e| ServiceError::Internal(format!("stored payment id: {e}")))
    }

    async fn create_payment(
        &self,
        tenant: &TenantId,
        id: &PaymentId,
        order: PaymentOrder,
        now: Timestamp,
    ) -> ServiceResult<PaymentView> {
        let cell = self.cell(order.user_id.region())?;
        let token = random_token();
        let key = self.vault().user_key(cell, &order.user_id).await?;
        let details = PaymentDetails {
            creditor_name: order.creditor_name,
            creditor: StoredAccount::from_reference(&order.creditor),
            debtor: order.debtor.as_ref().map(StoredAccount::from_reference),
            debtor_name: None,
            remittance: order.remittance,
            authorize_token: token.clone(),
        };
        let end_to_end_id = order.end_to_end_id.unwrap_or_else(|| {
            id.as_str()
                .rsplit('_')
                .next()
                .unwrap_or("kontor")
                .to_owned()
        });
        let new = NewPayment {
            payment: Payment {
                id: id.clone(),
                tenant_id: tenant.clone(),
                user_id: order.user_id,
                bank_id: order.bank_id,
                scheme: order.scheme,
                status: PaymentStatus::Pending,
                phase: PaymentPhase::Accepted,
                amount: order.amount,
                end_to_end_id,
                redirect_uri: order.redirect_uri,
                bank_payment_id: None,
                bank_status: None,
                status_reason: None,
                created_at: now,
                updated_at: now,
                next_poll_at: None,
                poll_attempts: 0,
            },
            details: seal_json(&key, &details, &crate::vault::context::payment(id))?,
            authorize_token_hash: hash_token(&token),
        };
        cell.create_payment(&new)
            .await
            .map_err(ServiceError::from_store)?;
        self.payment_view(tenant, id).await
    }

    /// A tenant's payment with its details, history, and (while pending) the authorisation URL.
    pub async fn payment_view(
        &self,
        tenant: &TenantId,
        id: &PaymentId,
    ) -> ServiceResult<PaymentView> {
        let cell = self.cell(id.region())?;
        let payment = cell
            .payment(tenant, id)
            .await
            .map_err(ServiceError::from_store)?;
        let secrets = cell
            .payment_secrets(id)
            .await
            .map_err(ServiceError::from_store)?;
        let key = self.vault().user_key(cell, &payment.user_id).await?;
        let details: PaymentDetails =
            open_json(&key, &secrets.details, &crate::vault::context::payment(id))?;
        let history = cell
            .status_history(id)
            .await
            .map_err(ServiceError::from_store)?;
        let open = matches!(
            payment.phase,
            PaymentPhase::Accepted | PaymentPhase::Initiating | PaymentPhase::AwaitingSca
        );
        let authorize_url = if open {
            Some(self.authorize_url(id, &details.authorize_token)?)
        } else {
            None
        };
        Ok(PaymentView {
            payment,
            details,
            history,
            authorize_url,
        })
    }

    /// Rewrites the statuses earlier releases stored as `executing` as `authorised`, the one
    /// word for that stage now, in batches, in every cell; returns how many rows changed.
    /// Reads already take `executing` as `authorised` (`PaymentStatus::parse`); this makes the
    /// stored words match, so that a filter on `status` in SQL finds them. Resumable
    /// (`kontor migrate` runs it); rows an earlier release writes during a rollout are
    /// converted by the next run.
    pub async fn merge_legacy_payment_statuses(&self) -> ServiceResult<u64> {
        const BATCH: usize = 500;
        let mut changed = 0;
        for region in self.cells().regions().cloned().collect::<Vec<_>>() {
            let cell = self.cell(&region)?;
            loop {
                let batch = cell
                    .rename_payment_status(
                        PaymentStatus::LEGACY_EXECUTING,
                        PaymentStatus::Authorised.as_str(),
                        BATCH,
                    )
                    .await
                    .map_err(ServiceError::from_store)?;
                if batch == 0 {
                    break;
                }
                changed += batch;
            }
        }
        Ok(changed)
    }

    /// Records a step that may change the payment's status (`payment` is the payment before
    /// it), counting a change in `kontor_payment_status_changes_total{region, status}`.
    pub(crate) async fn advance_status(
        &self,
        cell: &dyn kontor_store::CellStore,
        payment: &Payment,
        change: &PaymentChange,
    ) -> ServiceResult<Payment> {
        let updated = cell
            .advance_payment(&payment.id, change)
            .await
            .map_err(ServiceError::from_store)?;
        if updated.status != payment.status {
            metrics::counter!(
                "kontor_payment_status_changes_total",
                "region" => updated.id.region().as_str().to_owned(),
                "status" => updated.status.as_str(),
            )
            .increment(1);
        }
        Ok(updated)
    }

    /// The event a status change emits.
    pub(crate) fn status_event(
        payment: &Payment,
        next: PaymentStatus,
        bank: &kontor_banks::BankPaymentStatus,
    ) -> Option<Event> {
        (next != payment.status).then(|| {
            Event::new(
                payment.tenant_id.clone(),
                &payment.user_id,
                EventData::PaymentStatusChanged(PaymentStatusChanged {
                    payment_id: payment.id.clone(),
                    status: next,
                    previous_status: payment.status,
                    bank_status: bank.verbatim.clone(),
                    reason: bank.reason.clone(),
                }),
            )
        })
    }
}
