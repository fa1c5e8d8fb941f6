//! Which banks the sandbox runs: the three built-in ones and any defined in a `--banks` file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::iban::SUPPORTED_COUNTRIES;
use crate::data::users::USERS;
use crate::tpp::TokenAuthMethod;

/// The API standard a simulated bank speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standard {
    /// Berlin Group NextGenPSD2 XS2A 1.3.8.
    BerlinGroup,
    /// UK Open Banking Read/Write API 3.1.11.
    UkOpenBanking,
}

impl Standard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BerlinGroup => "berlin-group",
            Self::UkOpenBanking => "uk-open-banking",
        }
    }
}

/// Colours and wording of a bank's SCA pages, so each bank looks like itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    /// Main brand colour (CSS colour).
    pub primary: String,
    /// Colour of buttons and highlights.
    pub accent: String,
    /// Page background.
    pub background: String,
    /// Page language for labels: `de`, `fr` or `en`.
    pub language: String,
    /// A short tagline under the bank's name.
    pub tagline: String,
}

/// One simulated bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    /// URL path segment and identifier (`[a-z0-9-]`), e.g. `sonnenbank`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// ISO 3166 country code; decides the IBAN format (DE, FR, GB, AT, NL, BE).
    pub country: String,
    pub standard: Standard,
    /// The bank's BIC.
    pub bic: String,
    /// Currency of its accounts: EUR or GBP.
    pub currency: String,
    /// Sandbox users (`alice`, `bob`, `carol`) who hold accounts at this bank.
    pub customers: Vec<String>,
    /// Transactions per page before `_links.next` / `Links.Next` is used.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// UK only: the TPP's OAuth2 client id.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// UK only: the TPP's OAuth2 client secret.
    #[serde(default = "default_client_secret")]
    pub client_secret: String,
    /// UK only: reads a day per consent, account and endpoint without the PSU present
    /// (no `x-fapi-customer-ip-address`), as PSD2 RTS Art. 36(5) allows.
    #[serde(default = "default_unattended")]
    pub unattended_reads_per_day: u32,
    /// UK only, strict mode: how the demo TPP's client authenticates at the token endpoint
    /// (`private_key_jwt` or `tls_client_auth`).
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: TokenAuthMethod,
    pub theme: Theme,
}

fn default_page_size() -> usize {
    50
}
fn default_client_id() -> String {
    "kontor-sandbox-tpp".to_string()
}
fn default_client_secret() -> String {
    "sandbox-secret".to_string()
}
fn default_unattended() -> u32 {
    4
}
fn default_auth_method() -> TokenAuthMethod {
    TokenAuthMethod::PrivateKeyJwt
}

fn theme(primary: &str, accent: &str, background: &str, language: &str, tagline: &str) -> Theme {
    Theme {
        primary: primary.into(),
        accent: accent.into(),
        background: background.into(),
        language: language.into(),
        tagline: tagline.into(),
    }
}

/// The banks the sandbox runs when no file says otherwise.
pub fn default_banks() -> Vec<BankConfig> {
    vec![
        BankConfig {
            id: "sonnenbank".into(),
            name: "Sonnenbank".into(),
            country: "DE".into(),
            standard: Standard::BerlinGroup,
            bic: "SONNDEM1XXX".into(),
            currency: "EUR".into(),
            customers: vec!["alice".into(), "carol".into()],
            page_size: default_page_size(),
            client_id: default_client_id(),
            client_secret: default_client_secret(),
            unattended_reads_per_day: default_unattended(),
            token_endpoint_auth_method: default_auth_method(),
            theme: theme(
                "#f5a400",
                "#c2410c",
                "#fffaf0",
                "de",
                "Ihre Bank im Sonnenschein",
            ),
        },
        BankConfig {
            id: "banque-lumiere".into(),
            name: "Banque Lumière".into(),
            country: "FR".into(),
            standard: Standard::BerlinGroup,
            bic: "LUMIFRPPXXX".into(),
            currency: "EUR".into(),
            customers: vec!["carol".into()],
            page_size: default_page_size(),
            client_id: default_client_id(),
            client_secret: default_client_secret(),
            unattended_reads_per_day: default_unattended(),
            token_endpoint_auth_method: default_auth_method(),
            theme: theme(
                "#1e3a8a",
                "#b91c1c",
                "#f8fafc",
                "fr",
                "La banque qui éclaire vos comptes",
            ),
        },
        BankConfig {
            id: "thames-bank".into(),
            name: "Thames Bank".into(),
            country: "GB".into(),
            standard: Standard::UkOpenBanking,
            bic: "THAMGB2LXXX".into(),
            currency: "GBP".into(),
            customers: vec!["bob".into(), "carol".into()],
            page_size: default_page_size(),
            client_id: default_client_id(),
            client_secret: default_client_secret(),
            unattended_reads_per_day: default_unattended(),
            token_endpoint_auth_method: default_auth_method(),
            theme: theme(
                "#0f766e",
                "#134e4a",
                "#f0fdfa",
                "en",
                "Banking on the river since 1822",
            ),
        },
    ]
}

/// A `--banks` file: more banks, and whether the built-in ones stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanksFile {
    /// Keep the three built-in banks (default true).
    #[serde(default = "yes")]
    pub include_default_banks: bool,
    #[serde(default, rename = "bank")]
    pub banks: Vec<BankConfig>,
}

fn yes() -> bool {
    true
}

/// Why a bank definition was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read banks file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("banks file {path} is not valid: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("bank `{id}`: {reason}")]
    Invalid { id: String, reason: String },
}

/// Reads a banks file and merges it with the defaults it asks for.
pub fn load_banks_file(path: &Path) -> Result<Vec<BankConfig>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: BanksFile = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: shown,
        source: Box::new(source),
    })?;
    let mut banks = if file.include_default_banks {
        default_banks()
    } else {
        Vec::new()
    };
    banks.extend(file.banks);
    validate(&banks)?;
    Ok(banks)
}

/// Checks a set of banks is one the sandbox can serve.
pub fn validate(banks: &[BankConfig]) -> Result<(), ConfigError> {
    let invalid = |id: &str, reason: String| ConfigError::Invalid {
        id: id.to_string(),
        reason,
    };
    let mut seen = std::collections::HashSet::new();
    for bank in banks {
        let id = bank.id.as_str();
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                id,
                "id must be lower-case letters, digits and '-'".into(),
            ));
        }
        if ["admin", "static", "healthz"].contains(&id) {
            return Err(invalid(id, "this id is reserved".into()));
        }
        if !seen.insert(id) {
            return Err(invalid(id, "defined twice".into()));
        }
        if !SUPPORTED_COUNTRIES.contains(&bank.country.as_str()) {
            return Err(invalid(
                id,
                format!("country must be one of {SUPPORTED_COUNTRIES:?}"),
            ));
        }
        if !["EUR", "GBP"].contains(&bank.currency.as_str()) {
            return Err(invalid(id, "currency must be EUR or GBP".into()));
        }
        if bank.standard == Standard::BerlinGroup && bank.currency != "EUR" {
            return Err(invalid(
                id,
                "Berlin Group banks here keep EUR accounts (SEPA)".into(),
            ));
        }
        if bank.page_size == 0 || bank.page_size > 1000 {
            return Err(invalid(id, "page_size must be 1..=1000".into()));
        }
        let bic = bank.bic.as_bytes();
        if !(bic.len() == 8 || bic.len() == 11)
            || !bic
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(invalid(
                id,
                "bic must be 8 or 11 upper-case letters/digits".into(),
            ));
        }
        if !["de", "fr", "en"].contains(&bank.theme.language.as_str()) {
            return Err(invalid(id, "theme.language must be de, fr or en".into()));
        }
        for customer in &bank.customers {
            if !USERS.iter().any(|u| u.username == customer) {
                return Err(invalid(id, format!("unknown sandbox user `{customer}`")));
            }
        }
    }
    if banks.is_empty() {
        return Err(invalid("-", "no banks to serve".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(validate(&default_banks()).is_ok());
    }

    #[test]
    fn banks_file_adds_banks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("banks.toml");
        std::fs::write(
            &path,
            r##"
include_default_banks = false
[[bank]]
id = "alpenbank"
name = "Alpenbank"
country = "AT"
standard = "berlin-group"
bic = "ALPNATW1XXX"
currency = "EUR"
customers = ["alice"]
theme = { primary = "#065f46", accent = "#047857", background = "#ecfdf5", language = "de", tagline = "Servus" }
"##,
        )
        .unwrap();
        let banks = load_banks_file(&path).unwrap();
        assert_eq!(banks.len(), 1);
        assert_eq!(banks[0].page_size, 50);
        std::fs::write(&path, "[[bank]]\nid = \"Bad Id\"\n").unwrap();
        assert!(load_banks_file(&path).is_err());
    }
}
