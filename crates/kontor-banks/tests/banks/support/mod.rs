//! The test fixture: a sandbox bank on a free port, a connector for one of its banks, a user
//! who banks there, and a browser to authorise with.

pub mod browser;
pub mod capture;
pub mod html;
pub mod payments;
pub mod proxy;
pub mod strict;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use kontor_banks::{
    Access, BankConnector, BankProfile, ConsentOutcome, ConsentRequest, ConsentSession,
    HttpSettings, ReadContext, ScaPreference, ScaStep, build_client,
};
use kontor_domain::bank::{BankId, Standard};
use kontor_sandbox_bank::{AccountInfo, FaultConfig, RunningSandbox, SandboxBank};
use url::Url;

use browser::{Browser, HUB_CALLBACK};

pub const BG_BANK: &str = "sonnenbank";
pub const UK_BANK: &str = "thames-bank";
pub const PSU_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// Fast retries, so that tests spend their time on HTTP, not on waiting.
pub fn test_settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        read_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        ..HttpSettings::default()
    }
}

pub struct Fixture {
    pub sandbox: RunningSandbox,
    pub bank: &'static str,
    pub user: &'static str,
    pub profile: BankProfile,
    pub connector: Arc<dyn BankConnector>,
    pub browser: Browser,
    admin: reqwest::Client,
}

impl Fixture {
    /// Sonnenbank (Berlin Group, offers decoupled SCA) and its customer alice.
    pub async fn berlin_group() -> Self {
        Self::start(BG_BANK, "alice", test_settings()).await
    }

    /// Thames Bank (UK Open Banking) and its customer bob.
    pub async fn uk() -> Self {
        Self::start(UK_BANK, "bob", test_settings()).await
    }

    pub async fn for_standard(standard: Standard) -> Self {
        match standard {
            Standard::BerlinGroup => Self::berlin_group().await,
            Standard::UkOpenBanking => Self::uk().await,
        }
    }

    pub async fn start(bank: &'static str, user: &'static str, settings: HttpSettings) -> Self {
        capture::install();
        // The sandbox's clock starts now and stands still unless a test moves it, so that
        // consent expiry and token lifetimes agree with the hub's wall clock.
        let sandbox = SandboxBank::builder()
            .seed(7)
            .start_local()
            .await
            .expect("sandbox starts");
        let info = sandbox.bank(bank).expect("bank exists");
        let standard = match bank {
            UK_BANK => Standard::UkOpenBanking,
            _ => Standard::BerlinGroup,
        };
        let profile = BankProfile {
            id: BankId::parse(bank).unwrap(),
            name: info.name.clone(),
            country: info.country.clone(),
            standard,
            base_url: Url::parse(&info.base_url).unwrap(),
            client_id: info.client_id.clone(),
            client_secret: info.client_secret.clone(),
            decoupled_sca: standard == Standard::BerlinGroup,
        };
        let connector = connector(&profile, settings);
        Self {
            sandbox,
            bank,
            user,
            profile,
            connector,
            browser: Browser::new(),
            admin: build_client(&HttpSettings::default()).unwrap(),
        }
    }

    /// Another connector to the same bank, with other settings.
    pub fn connector_with(&self, settings: HttpSettings) -> Arc<dyn BankConnector> {
        connector(&self.profile, settings)
    }

    /// A connector that reaches the bank's API through a proxy able to lose answers.
    pub async fn through_proxy(&self) -> (proxy::LossyProxy, Arc<dyn BankConnector>) {
        let proxy = proxy::LossyProxy::start(&self.profile.base_url).await;
        let profile = BankProfile {
            base_url: proxy.base_url.clone(),
            ..self.profile.clone()
        };
        let connector = connector(&profile, test_settings());
        (proxy, connector)
    }

    pub fn request(&self) -> ConsentRequest {
        ConsentRequest {
            access: Access::ALL,
            valid_until: self.sandbox.now().date() + time::Duration::days(80),
            frequency_per_day: 4,
            redirect_uri: Url::parse(HUB_CALLBACK).unwrap(),
            state: format!("st-{}", rand_suffix()),
            sca: ScaPreference::Redirect,
            psu_ip: Some(PSU_IP),
        }
    }

    /// A consent started, authorised in the browser and completed: active.
    pub async fn link(&self) -> ConsentSession {
        let request = self.request();
        let started = self.connector.start_consent(&request).await.expect("start");
        let ScaStep::Redirect { url } = started.sca else {
            panic!("expected a redirect, got {:?}", started.sca);
        };
        let callback = self.browser.authorise(url, self.user).await;
        assert_eq!(callback.get("state"), Some(request.state.as_str()));
        let mut session = started.session;
        let outcome = self
            .connector
            .complete_consent(&mut session, &callback)
            .await
            .expect("complete");
        assert_eq!(
            outcome,
            ConsentOutcome::Active {
                valid_until: Some(request.valid_until)
            }
        );
        session
    }

    /// This user's accounts at this bank, as the sandbox knows them.
    pub fn sandbox_accounts(&self) -> Vec<AccountInfo> {
        let mut accounts: Vec<AccountInfo> = self
            .sandbox
            .accounts(self.bank)
            .unwrap()
            .into_iter()
            .filter(|a| a.username == self.user)
            .collect();
        accounts.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
        accounts
    }

    pub fn faults(&self, config: FaultConfig) {
        self.sandbox.set_faults(self.bank, config).unwrap();
    }

    /// How many faults the sandbox injected at this bank so far.
    pub async fn injected(&self) -> u64 {
        let url = format!("{}/banks/{}/faults", self.sandbox.admin_url(), self.bank);
        let body: serde_json::Value = self
            .admin
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["injected"].as_u64().expect("injected count")
    }
}

fn connector(profile: &BankProfile, settings: HttpSettings) -> Arc<dyn BankConnector> {
    let http = build_client(&settings).expect("client");
    kontor_banks::connector(profile.clone(), http, settings)
}

/// The user at their browser.
pub fn present() -> ReadContext {
    ReadContext {
        psu_ip: Some(PSU_IP),
        request_id: None,
    }
}

/// A scheduled sync.
pub fn unattended() -> ReadContext {
    ReadContext::default()
}

pub fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
