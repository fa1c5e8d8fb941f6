//! Accepting a payment: once per idempotency key, stored sealed in the user's cell, and answered
//! with where the user authorises it. Nothing is sent to the bank yet.

use kontor_domain::payment::{
    EndToEndId, IdempotencyKey, Payment, PaymentPhase, PaymentStatus, RemittanceInfo, StatusChange,
};
use kontor_domain::time::Timestamp;
use kontor_domain::{PaymentId, TenantId};
use kontor_store::{Idempotency, LegacyIdempotency, NewPayment};

use super::{AcceptedPayment, PaymentDetails, PaymentOrder, PaymentView, StoredAccount};
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lookup;
use crate::tokens::{hash_token, random_token};
use crate::vault::seal_json;

/// How long a request holds its idempotency key before another may take it over (the request
/// is presumed dead).
const KEY_LOCK_SECONDS: i64 = 30;

impl Hub {
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
        key: &IdempotencyKey,
        request_digest: &str,
        order: PaymentOrder,
    ) -> ServiceResult<AcceptedPayment> {
        self.check_registered_redirect_uri(tenant, &order.redirect_uri)
            .await?;
        let root = self.vault().lookup_key(self.control()).await?;
        let stored_key = lookup::idempotency_key(root, tenant, key.as_str());
        let stored_hash = lookup::request_hash(root, tenant, request_digest);
        let plain_key = key.as_str();
        let key = stored_key.as_str();
        let candidate = PaymentId::generate(order.user_id.cell());
        let now = self.clock().now();
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
            .await?;
        let (id, replayed) = match outcome {
            Idempotency::New => (candidate, false),
            Idempotency::Resume { resource_id } => (Self::parse_payment_id(&resource_id)?, false),
            Idempotency::Replay { resource_id } => (Self::parse_payment_id(&resource_id)?, true),
            Idempotency::InFlight => {
                return Err(ServiceError::conflict(
                    ErrorCode::IdempotencyKeyInUse,
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                ));
            }
            Idempotency::Mismatch => {
                return Err(ServiceError::invalid(
                    ErrorCode::IdempotencyKeyReused,
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
                    .complete_idempotent(tenant, key, self.clock().now())
                    .await?;
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
        match self.payment_cell(id).await {
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
        let cell = self.cell_for_user(Some(tenant), &order.user_id)?;
        let token = random_token();
        let key = self.vault().user_key(cell, &order.user_id).await?;
        let details = PaymentDetails {
            creditor_name: order.creditor_name.into_inner(),
            creditor: StoredAccount::from_reference(&order.creditor),
            debtor: order.debtor.as_ref().map(StoredAccount::from_reference),
            debtor_name: None,
            remittance: order.remittance.map(RemittanceInfo::into_inner),
            authorize_token: token.clone(),
        };
        let end_to_end_id = order.end_to_end_id.map_or_else(
            || {
                id.as_str()
                    .rsplit('_')
                    .next()
                    .unwrap_or("kontor")
                    .to_owned()
            },
            EndToEndId::into_inner,
        );
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
                redirect_uri: order.redirect_uri.as_str().to_owned(),
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
        let stored = cell.create_payment(&new).await?;
        if stored != new.payment {
            // An earlier try of this request had stored it (its answer was lost): answer that.
            return self.payment_view(tenant, id).await;
        }
        // What was just written is the answer: no second read of the row, of the user's key or
        // of its history, and nothing opened that was just sealed.
        let history = vec![StatusChange {
            status: stored.status,
            bank_status: None,
            reason: None,
            at: stored.created_at,
        }];
        self.view_of(stored, details, history)
    }
}
