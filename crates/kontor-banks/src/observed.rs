//! Every connector call observed the same way, whatever the standard: a span per call (the
//! bank's directory id and the operation, never a consent id, token, account or name), and the
//! series `kontor_bank_requests_total{bank, operation, outcome}` and
//! `kontor_bank_request_duration_seconds{bank, operation}`. A call is one connector operation
//! with the HTTP layer's retries and pauses inside it: what the caller waited for.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use kontor_domain::account::{Balance, BankAccount};
use kontor_domain::bank::BankId;
use kontor_domain::transaction::BankTransaction;
use tracing::Instrument;

use crate::{
    BankConnector, BankError, BankPaymentStatus, Callback, ConsentOutcome, ConsentRequest,
    ConsentSession, ConsentStarted, PaymentCancellation, PaymentRequest, PaymentSession,
    PaymentStarted, ReadContext, TransactionQuery,
};

/// The `outcome` label of a call: `ok` or the kind of [`BankError`]. `invalid_request` is a
/// request the connector refused to send.
fn outcome_label(result: Result<(), &BankError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(err) if err.is_invalid_request() => "invalid_request",
        Err(BankError::Unavailable { .. }) => "unavailable",
        Err(BankError::RateLimited { .. }) => "rate_limited",
        Err(BankError::AccessExceeded) => "access_exceeded",
        Err(BankError::ConsentExpired) => "consent_expired",
        Err(BankError::ConsentInvalid { .. }) => "consent_invalid",
        Err(BankError::Rejected { .. }) => "rejected",
        Err(BankError::Protocol { .. }) => "protocol",
    }
}

/// A connector whose calls are measured and traced.
#[derive(Debug)]
pub(crate) struct Observed {
    bank: BankId,
    inner: Arc<dyn BankConnector>,
}

impl Observed {
    pub(crate) fn new(bank: BankId, inner: Arc<dyn BankConnector>) -> Self {
        Self { bank, inner }
    }

    async fn call<T, F>(&self, operation: &'static str, work: F) -> Result<T, BankError>
    where
        F: Future<Output = Result<T, BankError>>,
    {
        let span = tracing::info_span!(
            "bank call",
            otel.kind = "client",
            bank.id = %self.bank,
            bank.operation = operation,
            outcome = tracing::field::Empty,
        );
        // Exported as a trace span: the bank's directory id, the operation and the outcome. Its
        // context is what the HTTP layer sends the bank as `traceparent`.
        let trace = tracing::info_span!(
            target: kontor_domain::TRACE_TARGET,
            "bank call",
            otel.name = format!("bank {operation}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            bank.id = %self.bank,
            bank.operation = operation,
            outcome = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = work
            .instrument(span.clone())
            .instrument(trace.clone())
            .await;
        let outcome = outcome_label(result.as_ref().map(|_| ()));
        span.record("outcome", outcome);
        trace.record("outcome", outcome);
        if result.is_err() {
            trace.record("otel.status_code", "error");
        }
        let bank = self.bank.as_str().to_owned();
        metrics::counter!(
            "kontor_bank_requests_total",
            "bank" => bank.clone(),
            "operation" => operation,
            "outcome" => outcome,
        )
        .increment(1);
        metrics::histogram!(
            "kontor_bank_request_duration_seconds",
            "bank" => bank,
            "operation" => operation,
        )
        .record(started.elapsed());
        result
    }
}

#[async_trait]
impl BankConnector for Observed {
    async fn start_consent(&self, request: &ConsentRequest) -> Result<ConsentStarted, BankError> {
        self.call("start_consent", self.inner.start_consent(request))
            .await
    }

    async fn complete_consent(
        &self,
        session: &mut ConsentSession,
        callback: &Callback,
    ) -> Result<ConsentOutcome, BankError> {
        self.call(
            "complete_consent",
            self.inner.complete_consent(session, callback),
        )
        .await
    }

    async fn consent_status(
        &self,
        session: &mut ConsentSession,
    ) -> Result<ConsentOutcome, BankError> {
        self.call("consent_status", self.inner.consent_status(session))
            .await
    }

    async fn accounts(
        &self,
        session: &mut ConsentSession,
        context: &ReadContext,
    ) -> Result<Vec<BankAccount>, BankError> {
        self.call("accounts", self.inner.accounts(session, context))
            .await
    }

    async fn balances(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        context: &ReadContext,
    ) -> Result<Vec<Balance>, BankError> {
        self.call(
            "balances",
            self.inner.balances(session, bank_account_id, context),
        )
        .await
    }

    async fn transactions(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        query: &TransactionQuery,
        context: &ReadContext,
    ) -> Result<Vec<BankTransaction>, BankError> {
        self.call(
            "transactions",
            self.inner
                .transactions(session, bank_account_id, query, context),
        )
        .await
    }

    async fn revoke(&self, session: &mut ConsentSession) -> Result<(), BankError> {
        self.call("revoke", self.inner.revoke(session)).await
    }

    async fn initiate_payment(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, BankError> {
        self.call("initiate_payment", self.inner.initiate_payment(request))
            .await
    }

    fn submits_after_authorisation(&self) -> bool {
        self.inner.submits_after_authorisation()
    }

    async fn exchange_payment_code(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
    ) -> Result<bool, BankError> {
        self.call(
            "exchange_payment_code",
            self.inner.exchange_payment_code(session, callback),
        )
        .await
    }

    async fn complete_payment(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
        idempotency_key: &str,
    ) -> Result<BankPaymentStatus, BankError> {
        self.call(
            "complete_payment",
            self.inner
                .complete_payment(session, callback, idempotency_key),
        )
        .await
    }

    async fn payment_status(
        &self,
        session: &mut PaymentSession,
    ) -> Result<BankPaymentStatus, BankError> {
        self.call("payment_status", self.inner.payment_status(session))
            .await
    }

    async fn cancel_payment(
        &self,
        session: &mut PaymentSession,
    ) -> Result<PaymentCancellation, BankError> {
        self.call("cancel_payment", self.inner.cancel_payment(session))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_its_own_outcome() {
        let errors = [
            BankError::Unavailable {
                status: None,
                detail: String::new(),
            },
            BankError::RateLimited { retry_after: None },
            BankError::AccessExceeded,
            BankError::ConsentExpired,
            BankError::ConsentInvalid { code: "X".into() },
            BankError::Rejected {
                status: 400,
                code: "FORMAT_ERROR".into(),
                message: String::new(),
            },
            BankError::invalid_request("amount", "too many decimals"),
            BankError::protocol("x"),
        ];
        let labels: std::collections::BTreeSet<&str> =
            errors.iter().map(|e| outcome_label(Err(e))).collect();
        assert_eq!(labels.len(), errors.len());
        assert!(!labels.contains("ok"));
        assert_eq!(outcome_label(Ok(())), "ok");
    }
}
