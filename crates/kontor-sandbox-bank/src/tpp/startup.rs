//! Starting strict mode: the gate, the HTTPS server with a fresh certificate for the names
//! clients use, and the demo TPP's registration at every UK bank.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::clients::SigningCertificate;
use super::pki::UkClientInfo;
use super::{SandboxPki, TppGate, UkClient, UkClientRegistration};
use crate::builder::SandboxError;
use crate::config::Standard;
use crate::state::Bank;

/// The gate and the TLS acceptor for a sandbox reachable at `addr` and `root_url`.
pub(crate) fn prepare(
    pki: &SandboxPki,
    addr: SocketAddr,
    root_url: &str,
    extra_names: &[String],
) -> Result<(Arc<TppGate>, TlsAcceptor), SandboxError> {
    let gate = Arc::new(TppGate::new(pki.trust_store()?, pki.signing_key()?));
    let names = tls_names(addr, root_url, extra_names);
    let (chain, key) = pki.server_identity(&names)?;
    let config = super::tls::server_config(chain, key, &pki.tpp_ca_ders())?;
    Ok((gate, TlsAcceptor::from(config)))
}

/// Names for the HTTPS certificate: the usual local ones, the listen address, the public
/// URL's host and any the caller added.
fn tls_names(addr: SocketAddr, root_url: &str, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.push(addr.ip().to_string());
    if let Some(host) = url::Url::parse(root_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    {
        names.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
    }
    names.extend(extra.iter().cloned());
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

/// Registers the demo TPP at every UK bank (client id and method from the bank's
/// configuration) and records it in `demo-tpp.json`.
pub(crate) fn register_demo_clients(
    pki: &mut SandboxPki,
    gate: &TppGate,
    banks: &[Arc<Bank>],
) -> Result<(), SandboxError> {
    let Some(demo) = pki.demo_tpp().cloned() else {
        return Ok(());
    };
    let mut recorded = Vec::new();
    for bank in banks
        .iter()
        .filter(|b| b.config.standard == Standard::UkOpenBanking)
    {
        let method = bank.config.token_endpoint_auth_method;
        let registration = UkClientRegistration {
            client_id: bank.config.client_id.clone(),
            token_endpoint_auth_method: method,
            tls_client_auth_subject_dn: Some(demo.info.qwac_subject_dn.clone()),
            signing_certificates: vec![SigningCertificate {
                kid: demo.info.jws_kid.clone(),
                pem: crate::tpp::pki::pem("CERTIFICATE", &demo.qseal.cert_der),
            }],
            org_id: demo.info.org_id.clone(),
            software_statement_id: demo.info.software_statement_id.clone(),
            redirect_uris: Vec::new(),
        };
        let client =
            UkClient::from_registration(gate, registration).map_err(SandboxError::Registration)?;
        gate.register(bank.id(), client);
        recorded.push(UkClientInfo {
            bank_id: bank.id().to_string(),
            client_id: bank.config.client_id.clone(),
            token_endpoint_auth_method: method.as_str().to_string(),
            issuer: bank.base_url.clone(),
            token_url: bank.url("/oauth2/token"),
            jwks_url: bank.url("/jwks"),
        });
    }
    pki.set_demo_uk_clients(recorded);
    pki.write_demo_info()?;
    Ok(())
}
