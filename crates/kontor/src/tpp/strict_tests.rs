//! Against the sandbox in strict mode, which refuses a request signed with a seal of another
//! organisation than the TLS certificate's: a tenant registered as a third party of its own
//! signs with its own seal, not the hub's.

use std::path::{Path, PathBuf};

use kontor_banks::{Access, BankError, ConsentRequest, ScaPreference, ScaStep};
use kontor_sandbox_bank::tpp::{PspRole, TppIdentity, TppSubject};
use kontor_sandbox_bank::{SandboxBank, SandboxPki};

use super::*;
use crate::signing::SigningConfig;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn seal(dir: &Path, name: &str, tpp: &TppIdentity) -> SigningConfig {
    SigningConfig {
        qseal_cert: write(dir, &format!("{name}-qseal.pem"), &tpp.qseal.cert_pem()),
        qseal_key: write(dir, &format!("{name}-qseal.key"), &tpp.qseal.key_pem()),
        kid: None,
        jws_issuer: None,
    }
}

fn request() -> ConsentRequest {
    ConsentRequest {
        access: Access::ALL,
        valid_until: time::OffsetDateTime::now_utc().date() + time::Duration::days(80),
        frequency_per_day: 4,
        redirect_uri: url::Url::parse("https://hub.example/callback").unwrap(),
        state: "st-tenant-signing".into(),
        sca: ScaPreference::Redirect,
        psu_ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
    }
}

#[tokio::test]
async fn a_tenant_of_its_own_signs_with_its_own_seal() {
    let pki = SandboxPki::generate().unwrap();
    let hub_tpp = pki.demo_tpp().unwrap().clone();
    let acme = pki
        .issue_tpp(&TppSubject {
            organization: "Acme Payments".into(),
            organization_identifier: "PSDDE-BAFIN-654321".into(),
            org_id: "acme".into(),
            software_statement_id: "acme-app".into(),
            country: "DE".into(),
            roles: vec![PspRole::Ai, PspRole::Pi],
            nca_name: "Federal Financial Supervisory Authority".into(),
            nca_id: "DE-BAFIN".into(),
        })
        .unwrap();
    let sandbox = SandboxBank::builder()
        .seed(7)
        .require_tpp_certificates(pki.clone())
        .start_local()
        .await
        .unwrap();
    let info = sandbox.bank("sonnenbank").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pem = |tpp: &TppIdentity| format!("{}{}", tpp.qwac.cert_pem(), tpp.qwac.key_pem());
    let tenant = TenantId::generate();
    let mut config = BankConfig {
        id: "sonnenbank".into(),
        name: info.name.clone(),
        country: info.country.clone(),
        standard: Standard::BerlinGroup,
        base_url: info.base_url.clone(),
        client_id: None,
        client_secret: None,
        decoupled_sca: false,
        logo_url: None,
        tls_identity: Some(write(d, "hub-qwac.pem", &pem(&hub_tpp))),
        tls_key: None,
        ca_bundle: Some(write(d, "server-ca.pem", &pki.server_ca_pem())),
        payments: true,
        tenant_credentials: vec![TenantCredentials {
            tenant_id: tenant.to_string(),
            client_id: None,
            client_secret: None,
            tls_identity: Some(write(d, "acme-qwac.pem", &pem(&acme))),
            tls_key: None,
            signing: Some(seal(d, "acme", &acme)),
        }],
        signing: Some(seal(d, "hub", &hub_tpp)),
        token_auth: None,
    };
    validate("banks[0]", &config).unwrap();
    let hub = BankProfile {
        id: kontor_domain::bank::BankId::parse("sonnenbank").unwrap(),
        name: info.name.clone(),
        country: info.country.clone(),
        standard: Standard::BerlinGroup,
        base_url: url::Url::parse(&info.base_url).unwrap(),
        client_id: None,
        client_secret: None,
        decoupled_sca: false,
    };
    let settings = HttpSettings::default();
    let shared = kontor_banks::build_client(&settings).unwrap();
    let connectors = |config: &BankConfig| {
        let mut made = tenant_connectors("banks[0]", config, &hub, &shared, &settings).unwrap();
        made.pop().unwrap().connector
    };

    // The tenant's seal is listed for the expiry warning, as the tenant's.
    let made = tenant_connectors("banks[0]", &config, &hub, &shared, &settings).unwrap();
    let listed = made[0].seal.as_ref().map(|(label, _)| label.clone());
    assert_eq!(
        listed.map(|l| (l.tenant, l.kind)),
        Some((Some(tenant.to_string()), "seal"))
    );

    // The tenant's connector: its QWAC on the connection, its QSealC on the signature.
    let started = connectors(&config).start_consent(&request()).await;
    let started = started.unwrap_or_else(|e| panic!("the tenant's signed consent: {e:?}"));
    assert!(matches!(started.sca, ScaStep::Redirect { .. }));

    // Had it signed with the hub's seal (another organisation), the bank would refuse it.
    config.tenant_credentials[0].signing = Some(seal(d, "hub", &hub_tpp));
    let refused = connectors(&config)
        .start_consent(&request())
        .await
        .unwrap_err();
    let text = format!("{refused:?}");
    assert!(
        matches!(refused, BankError::Rejected { status: 401, .. })
            && text.contains("CERTIFICATE_INVALID"),
        "{text}"
    );
    sandbox.shutdown().await;
}
