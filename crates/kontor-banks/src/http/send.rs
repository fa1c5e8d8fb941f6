//! Sending one request: attempts, pauses between them, the answer read with a size limit, and
//! one log line per attempt. Under a caller's time limit ([`crate::deadline`]) each attempt gets
//! at most the time left, and a pause that would outlast it is not taken.

use std::time::Instant;

use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::backoff::backoff;
use super::classify::{self, Verdict};
use super::{Body, Incoming, Outgoing, Retry, Transport};
use crate::BankError;
use crate::deadline;

/// No bank answer the connectors read comes near this; a larger one is refused rather than
/// held in memory.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

impl Transport {
    /// Sends `out`, repeating it on transient failures when it is safe to (with a body made
    /// anew when it has `fresh_body`), and returns the 2xx answer or what went wrong.
    pub(crate) async fn send(&self, mut out: Outgoing) -> Result<Incoming, BankError> {
        let attempts = match out.retry {
            Retry::Safe => self.settings.read_attempts.max(1),
            Retry::Never => 1,
        };
        let mut request = self.build(&out)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1
                && let Some(fresh) = &out.fresh_body
            {
                out.body = Some(fresh()?);
                request = self.build(&out)?;
            }
            let Some(mut copy) = request.try_clone() else {
                return Err(BankError::protocol("request cannot be repeated"));
            };
            if let Some(left) = deadline::remaining() {
                if left.is_zero() {
                    return Err(out_of_time());
                }
                *copy.timeout_mut() = Some(left.min(self.settings.request_timeout));
            }
            let started = Instant::now();
            let verdict = match self.client.execute(copy).await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match read_body(response).await {
                        Ok(body) if status.is_success() => {
                            tracing::debug!(
                                bank.id = %self.bank,
                                http.method = %out.method,
                                http.path = out.template,
                                http.status = status.as_u16(),
                                duration_ms = elapsed_ms(started),
                                attempt,
                                "bank call"
                            );
                            return Ok(Incoming { headers, body });
                        }
                        Ok(body) => classify::status(
                            self.dialect,
                            status,
                            &headers,
                            &body,
                            out.unattended,
                            self.settings.max_retry_after,
                        ),
                        Err(ReadError::Transport(err)) => classify::transport(&err),
                        Err(ReadError::TooLarge) => {
                            Verdict::Final(BankError::protocol("answer too large"))
                        }
                    }
                    .with_status(status.as_u16())
                }
                Err(err) => classify::transport(&err).with_status(0),
            };
            let (error, pause) = match verdict.verdict {
                Verdict::Final(error) => (error, None),
                Verdict::Transient { error, after } if attempt < attempts => {
                    let pause = backoff(&self.settings, attempt).max(after.unwrap_or_default());
                    // Someone is waiting: rather the error now than an answer too late.
                    let in_time = deadline::remaining().is_none_or(|left| pause < left);
                    (error, in_time.then_some(pause))
                }
                Verdict::Transient { error, .. } => (error, None),
            };
            tracing::warn!(
                bank.id = %self.bank,
                http.method = %out.method,
                http.path = out.template,
                http.status = verdict.status,
                duration_ms = elapsed_ms(started),
                attempt,
                retry_in_ms = pause.map(|p| u64::try_from(p.as_millis()).unwrap_or(u64::MAX)),
                error = %error,
                "bank call failed"
            );
            match pause {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Err(error),
            }
        }
    }

    fn build(&self, out: &Outgoing) -> Result<reqwest::Request, BankError> {
        let mut headers = out.headers.clone();
        if let Some(signer) = &self.signer {
            let body: &[u8] = match &out.body {
                Some(Body::Json(bytes)) => bytes,
                Some(Body::Form(encoded)) => encoded.as_bytes(),
                None => &[],
            };
            signer.sign(&mut headers, body)?;
        }
        // The bank call's span travels with the request as W3C `traceparent` (outside what is
        // signed); without telemetry there is no span and nothing is added.
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(
                &opentelemetry::Context::current(),
                &mut opentelemetry_http::HeaderInjector(&mut headers),
            );
        });
        let mut builder = self
            .client
            .request(out.method.clone(), out.url.clone())
            .timeout(self.settings.request_timeout)
            .headers(headers);
        builder = match &out.body {
            Some(Body::Json(bytes)) => builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(bytes.clone()),
            Some(Body::Form(encoded)) => builder
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(encoded.clone()),
            None => builder,
        };
        builder
            .build()
            .map_err(|_| BankError::protocol("cannot build the request"))
    }
}

/// A verdict with the status it came from (0: no answer), for the log line.
struct Logged {
    verdict: Verdict,
    status: u16,
}

impl Verdict {
    fn with_status(self, status: u16) -> Logged {
        Logged {
            verdict: self,
            status,
        }
    }
}

enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The caller's time limit ran out before an attempt could be made.
fn out_of_time() -> BankError {
    BankError::Unavailable {
        status: None,
        detail: "no answer within the time the request may wait".into(),
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
