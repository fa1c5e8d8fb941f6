//! The sandbox bank as the hub's bank directory in tests.

use kontor_banks::{BankProfile, HttpSettings};
use kontor_domain::bank::{BankId, Standard};
use kontor_sandbox_bank::RunningSandbox;
use kontor_service::{BankDirectory, BankEntry};

/// Every sandbox bank's profile, with the sandbox's own client credentials (UK) and decoupled
/// SCA where the bank offers it (Berlin Group).
pub fn sandbox_profiles(sandbox: &RunningSandbox) -> Vec<BankProfile> {
    sandbox
        .banks()
        .into_iter()
        .map(|bank| {
            let standard = match bank.standard.as_str() {
                "uk-open-banking" => Standard::UkOpenBanking,
                _ => Standard::BerlinGroup,
            };
            BankProfile {
                id: BankId::parse(&bank.id).expect("sandbox bank id"),
                name: bank.name.clone(),
                country: bank.country.clone(),
                standard,
                base_url: url::Url::parse(&bank.base_url).expect("sandbox base url"),
                client_id: bank.client_id.clone(),
                client_secret: bank.client_secret.clone(),
                decoupled_sca: standard == Standard::BerlinGroup,
            }
        })
        .collect()
}

/// Every sandbox bank, with connectors using `http`.
pub fn sandbox_directory(sandbox: &RunningSandbox, http: &HttpSettings) -> BankDirectory {
    crate::install_crypto_provider();
    let client = kontor_banks::build_client(http).expect("bank http client");
    let mut directory = BankDirectory::new();
    for profile in sandbox_profiles(sandbox) {
        let connector = kontor_banks::connector(profile.clone(), client.clone(), http.clone());
        directory.insert(
            BankEntry {
                profile,
                logo_url: None,
            },
            connector,
        );
    }
    directory
}
