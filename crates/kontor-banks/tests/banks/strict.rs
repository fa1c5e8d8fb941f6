//! Against the sandbox in strict mode: the connectors link, read and pay over mutual TLS with
//! every request signed (Berlin Group message signatures; UK `private_key_jwt` or
//! `tls_client_auth`, PS256 request objects and `x-jws-signature`, `id_token`s checked), and
//! what the bank refuses — a missing or altered signature, a body altered under a valid
//! signature, a replayed request object — comes back as a clear error, never a panic.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kontor_banks::berlin_group::{BerlinGroup, MessageSigner, QsealSigner};
use kontor_banks::uk_open_banking::{
    ClientSecretSigner, RequestObjectSigner, SealSigner, TokenAuth, UkOpenBanking,
};
use kontor_banks::{BankError, BookingStatus, ConsentOutcome, ScaStep, TransactionQuery};
use kontor_sandbox_bank::UkClientRegistration;
use kontor_sandbox_bank::tpp::TokenAuthMethod;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::support::browser::Landing;
use crate::support::payments::iso;
use crate::support::strict::{demo, demo_signing};
use crate::support::{BG_BANK, Fixture, UK_BANK, present, test_settings};

/// Links, reads accounts, balances and transactions, pays and sees the payment settle.
async fn links_reads_and_pays(fx: &Fixture) {
    let mut session = fx.link().await;
    let accounts = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap();
    let known = fx.sandbox_accounts();
    assert_eq!(accounts.len(), known.len());
    let current = known.iter().find(|a| a.kind == "Current").unwrap();
    let balances = fx
        .connector
        .balances(&mut session, &current.resource_id, &present())
        .await
        .unwrap();
    assert!(!balances.is_empty());
    let query = TransactionQuery {
        from: None,
        to: None,
        status: BookingStatus::Both,
    };
    let transactions = fx
        .connector
        .transactions(&mut session, &current.resource_id, &query, &present())
        .await
        .unwrap();
    assert_eq!(transactions.len(), current.entries);

    let request = fx.payment("12.34");
    let (mut payment, status) = fx.pay(&request).await;
    assert!(iso(&status).is_some(), "{status:?}");
    let step = if fx.is_uk() {
        time::Duration::seconds(2)
    } else {
        time::Duration::hours(1)
    };
    let settled = fx.settle(&mut payment, step).await;
    assert_eq!(iso(&settled), Some("ACSC"));
    assert!(fx.only_payment(&request.idempotency_key).executed);
    fx.connector.revoke(&mut session).await.unwrap();
}

#[tokio::test]
async fn berlin_group_links_reads_and_pays_signed_over_mutual_tls() {
    let fx = Fixture::strict(BG_BANK, "alice", Some(&demo_signing()), None).await;
    links_reads_and_pays(&fx).await;
}

#[tokio::test]
async fn uk_links_reads_and_pays_with_private_key_jwt() {
    let fx = Fixture::strict(UK_BANK, "bob", Some(&demo_signing()), None).await;
    links_reads_and_pays(&fx).await;
}

#[tokio::test]
async fn uk_links_reads_and_pays_with_tls_client_auth() {
    let fx = Fixture::strict(
        UK_BANK,
        "bob",
        Some(&demo_signing()),
        Some(TokenAuth::TlsClientAuth),
    )
    .await;
    let info = &demo().info;
    fx.sandbox
        .register_uk_client(
            UK_BANK,
            UkClientRegistration {
                client_id: fx.profile.client_id.clone().unwrap(),
                token_endpoint_auth_method: TokenAuthMethod::TlsClientAuth,
                tls_client_auth_subject_dn: Some(info.qwac_subject_dn.clone()),
                signing_certificates: vec![kontor_sandbox_bank::tpp::clients::SigningCertificate {
                    kid: info.jws_kid.clone(),
                    pem: demo().qseal.cert_pem(),
                }],
                org_id: info.org_id.clone(),
                software_statement_id: info.software_statement_id.clone(),
                redirect_uris: Vec::new(),
            },
        )
        .unwrap();
    links_reads_and_pays(&fx).await;
}

/// Signs as the wrapped signer would, then spoils the result as `how` says.
#[derive(Debug)]
struct Spoiled {
    inner: QsealSigner,
    how: Spoil,
}

#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// A valid signature over another body: the body as sent was altered after signing.
    Body,
    /// The signature bytes altered.
    Signature,
}

impl MessageSigner for Spoiled {
    fn sign(&self, headers: &mut HeaderMap, body: &[u8]) -> Result<(), BankError> {
        match self.how {
            Spoil::Body => {
                let mut other = body.to_vec();
                other.extend_from_slice(b" ");
                self.inner.sign(headers, &other)
            }
            Spoil::Signature => {
                self.inner.sign(headers, body)?;
                let value = headers["signature"].to_str().unwrap().to_owned();
                let (head, signature) = value.rsplit_once("signature=\"").unwrap();
                let mut raw = STANDARD.decode(signature.trim_end_matches('"')).unwrap();
                raw[7] ^= 0x01;
                let spoiled = format!("{head}signature=\"{}\"", STANDARD.encode(raw));
                headers.insert("signature", HeaderValue::from_str(&spoiled).unwrap());
                Ok(())
            }
        }
    }
}

fn refused_with(result: Result<impl std::fmt::Debug, BankError>, status: u16, code: &str) {
    match result {
        Err(BankError::Rejected {
            status: s, code: c, ..
        }) if s == status && c == code => {}
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn berlin_group_refusals_reach_the_hub_as_rejections() {
    let mut fx = Fixture::strict(BG_BANK, "alice", None, None).await;
    // Unsigned, to a bank that requires signatures.
    refused_with(
        fx.connector.start_consent(&fx.request()).await,
        401,
        "SIGNATURE_MISSING",
    );
    for how in [Spoil::Body, Spoil::Signature] {
        let signer = Spoiled {
            inner: QsealSigner::new(demo_signing().seal),
            how,
        };
        fx.use_connector(Arc::new(
            BerlinGroup::new(fx.profile.clone(), fx.mtls())
                .with_settings(test_settings())
                .with_signer(Arc::new(signer)),
        ));
        // A consent (a body) and a read (the empty body).
        refused_with(
            fx.connector.start_consent(&fx.request()).await,
            401,
            "SIGNATURE_INVALID",
        );
        let mut session = kontor_banks::ConsentSession {
            consent_id: "cns-unknown".into(),
            ..Default::default()
        };
        refused_with(
            fx.connector.accounts(&mut session, &present()).await,
            401,
            "SIGNATURE_INVALID",
        );
        let request = fx.payment("1.00");
        refused_with(
            fx.connector.initiate_payment(&request).await,
            401,
            "SIGNATURE_INVALID",
        );
        assert!(fx.ledger(&request.idempotency_key).is_empty(), "{how:?}");
    }
}

/// A seal signer that spoils only the payment bodies' detached JWS (its header names the
/// Open Banking `iat`); request objects and client assertions stay good.
#[derive(Debug)]
struct SpoiledJws {
    inner: SealSigner,
    how: Spoil,
}

impl RequestObjectSigner for SpoiledJws {
    fn algorithm(&self) -> &str {
        self.inner.algorithm()
    }
    fn key_id(&self) -> Option<&str> {
        self.inner.key_id()
    }
    fn issuer(&self) -> Option<&str> {
        self.inner.issuer()
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, BankError> {
        let text = std::str::from_utf8(signing_input).unwrap();
        let (header, payload) = text.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.decode(header).unwrap();
        if !String::from_utf8_lossy(&header).contains("openbanking.org.uk/iat") {
            return self.inner.sign(signing_input);
        }
        match self.how {
            Spoil::Body => {
                let mut body = URL_SAFE_NO_PAD.decode(payload).unwrap();
                body.extend_from_slice(b" ");
                let (h, _) = text.split_once('.').unwrap();
                let other = format!("{h}.{}", URL_SAFE_NO_PAD.encode(body));
                self.inner.sign(other.as_bytes())
            }
            Spoil::Signature => {
                let mut signature = self.inner.sign(signing_input)?;
                signature[3] ^= 0x01;
                Ok(signature)
            }
        }
    }
}

#[tokio::test]
async fn uk_refusals_reach_the_hub_as_rejections() {
    let mut fx = Fixture::strict(UK_BANK, "bob", Some(&demo_signing()), None).await;
    let signing = demo_signing();
    for how in [Spoil::Body, Spoil::Signature] {
        let signer = SpoiledJws {
            inner: SealSigner::new(signing.seal.clone(), None, None),
            how,
        };
        let connector = UkOpenBanking::new(fx.profile.clone(), fx.mtls())
            .with_settings(test_settings())
            .with_fapi(
                SealSigner::new(signing.seal.clone(), None, None),
                TokenAuth::PrivateKeyJwt,
            )
            .with_signer(Arc::new(signer));
        fx.use_connector(Arc::new(connector));
        let request = fx.payment("1.00");
        refused_with(
            fx.connector.initiate_payment(&request).await,
            400,
            "UK.OBIE.Signature.Invalid",
        );
        assert!(fx.ledger(&request.idempotency_key).is_empty());
    }

    // The old modes against a FAPI bank: a client secret is not accepted at the token
    // endpoint; a connector signing HS256 with the secret gets no further either (whether the
    // token endpoint or the JWS check stops it, the hub sees a rejection, not a panic).
    let mut profile = fx.profile.clone();
    profile.client_secret = Some("sandbox-secret".into());
    let old = UkOpenBanking::new(profile.clone(), fx.mtls())
        .with_settings(test_settings())
        .with_signer(Arc::new(ClientSecretSigner::new("sandbox-secret")));
    fx.use_connector(Arc::new(old));
    refused_with(
        fx.connector.start_consent(&fx.request()).await,
        401,
        "invalid_client",
    );
    let hs256 = UkOpenBanking::new(profile, fx.mtls())
        .with_settings(test_settings())
        .with_token_auth(TokenAuth::TlsClientAuth)
        .with_signer(Arc::new(ClientSecretSigner::new("sandbox-secret")));
    fx.use_connector(Arc::new(hs256));
    let err = fx
        .connector
        .initiate_payment(&fx.payment("1.00"))
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn a_replayed_request_object_is_refused_and_the_hub_reports_it() {
    let fx = Fixture::strict(UK_BANK, "bob", Some(&demo_signing()), None).await;
    let request = fx.request();
    let started = fx.connector.start_consent(&request).await.unwrap();
    let ScaStep::Redirect { url } = started.sca.clone() else {
        panic!("redirect expected");
    };
    // The first use shows the bank's login page; the same request object again is refused.
    let first = fx.browser.open(url.clone()).await;
    assert_eq!(first.step().as_deref(), Some("login"));
    let Landing::Hub(callback) = fx.browser.open(url).await else {
        panic!("the replay must send the user back with an error");
    };
    assert_eq!(callback.get("error"), Some("invalid_request_object"));
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    let mut session = started.session;
    let outcome = fx
        .connector
        .complete_consent(&mut session, &callback)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ConsentOutcome::Rejected { reason, by_user: false } if reason.contains("invalid_request_object")),
        "{outcome:?}"
    );
}

/// The bank takes a client assertion once (its `jti`). A token request whose answer is lost
/// after the bank spent the assertion is retried with a new one, and succeeds; sending the
/// first one again would be refused as a replay.
#[tokio::test]
async fn a_retried_token_request_carries_a_new_client_assertion() {
    let fx = Fixture::strict(UK_BANK, "bob", Some(&demo_signing()), None).await;
    fx.faults(kontor_sandbox_bank::FaultConfig {
        lose_answer_next: 1,
        error_status: Some(503),
        path_contains: Some("/oauth2/token".into()),
        ..kontor_sandbox_bank::FaultConfig::default()
    });
    // Starting a consent needs the hub's client-credentials token.
    let started = fx.connector.start_consent(&fx.request()).await;
    let started = started.unwrap_or_else(|e| panic!("the retried token request: {e:?}"));
    assert!(matches!(started.sca, ScaStep::Redirect { .. }));
    assert_eq!(
        fx.injected().await,
        1,
        "one answer lost, then a new assertion accepted"
    );
}
