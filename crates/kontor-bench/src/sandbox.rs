//! The sandbox bank inside this process (so it outlives any hub it serves), the `[[banks]]`
//! tables that point a hub at it, and the two sandbox customers the payment tools pay from:
//! alice at sonnenbank (EUR, Berlin Group, cell `de`) and bob at thames-bank (GBP, UK Open
//! Banking, cell `uk`).

use anyhow::{Context, bail};
use kontor_sandbox_bank::{FaultConfig, RunningSandbox, SandboxBank};
use serde::Serialize;
use serde_json::{Value, json};

/// A bank as the hub's configuration lists it (`[[banks]]`).
#[derive(Debug, Clone, Serialize)]
pub struct HubBank {
    pub id: String,
    pub name: String,
    pub country: String,
    pub standard: String,
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub decoupled_sca: bool,
}

/// Who pays: a sandbox user at one bank, and the accounts of a payment body.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The sandbox login (`alice`, `bob`).
    pub username: String,
    pub bank_id: String,
    /// The hub cell the tenant's user lives in.
    pub region: String,
    pub currency: String,
    /// `debtor_account` of the payment body: the user's current account at the bank.
    pub debtor: Value,
    /// `creditor` of the payment body: an account at another bank.
    pub creditor: Value,
}

/// Starts the sandbox on a free local port: frozen clock (time moves when told), the given
/// seed, no faults and no latency on any bank.
pub async fn start(seed: u64) -> anyhow::Result<RunningSandbox> {
    start_behind(seed, None).await
}

/// The same, announcing `public_url` (a proxy in front of it) as its address in every URL it
/// hands out.
pub async fn start_behind(seed: u64, public_url: Option<&str>) -> anyhow::Result<RunningSandbox> {
    let mut builder = SandboxBank::builder().seed(seed).frozen_clock(true);
    if let Some(url) = public_url {
        builder = builder.public_url(url);
    }
    let sandbox = builder
        .start_local()
        .await
        .context("starting the sandbox bank")?;
    for bank in sandbox.banks() {
        sandbox
            .set_faults(&bank.id, FaultConfig::default())
            .with_context(|| format!("clearing the faults of {}", bank.id))?;
    }
    Ok(sandbox)
}

/// The sandbox's banks as the hub configures them (as `kontor demo` does).
pub fn hub_banks(sandbox: &RunningSandbox) -> Vec<HubBank> {
    sandbox
        .banks()
        .into_iter()
        .map(|bank| {
            let standard = bank.standard.as_str().to_owned();
            HubBank {
                decoupled_sca: standard == "berlin-group",
                standard,
                id: bank.id,
                name: bank.name,
                country: bank.country,
                base_url: bank.base_url,
                client_id: bank.client_id,
                client_secret: bank.client_secret,
            }
        })
        .collect()
}

/// alice at sonnenbank and bob at thames-bank, each paying from their first current account in
/// the bank's currency.
pub fn customers(sandbox: &RunningSandbox) -> anyhow::Result<Vec<Customer>> {
    [("alice", "sonnenbank", "de"), ("bob", "thames-bank", "uk")]
        .into_iter()
        .map(|(username, bank_id, region)| customer(sandbox, username, bank_id, region))
        .collect()
}

/// A sandbox user at a bank, paying from their first current account in the bank's currency
/// (their only one where it is a side account, as carol's at sonnenbank).
pub fn customer(
    sandbox: &RunningSandbox,
    username: &str,
    bank_id: &str,
    region: &str,
) -> anyhow::Result<Customer> {
    let info = sandbox
        .bank(bank_id)
        .with_context(|| format!("the sandbox has no bank {bank_id}"))?;
    let accounts = sandbox
        .accounts(bank_id)
        .with_context(|| format!("reading the accounts at {bank_id}"))?;
    let mine: Vec<_> = accounts
        .into_iter()
        .filter(|a| a.username == username && a.currency == info.currency)
        .collect();
    let Some(account) = mine
        .iter()
        .find(|a| a.kind.contains("current") || a.product.to_lowercase().contains("giro"))
        .or_else(|| mine.first())
    else {
        bail!("{username} has no {} account at {bank_id}", info.currency);
    };
    let (debtor, creditor) = match (&account.sort_code, &account.account_number) {
        (Some(sort_code), Some(number)) if bank_id == "thames-bank" => (
            json!({"sort_code": sort_code, "account_number": number}),
            json!({"name": "Landlord Ltd", "sort_code": "400993", "account_number": "30971327"}),
        ),
        _ => (
            json!({"iban": account.iban}),
            json!({"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"}),
        ),
    };
    Ok(Customer {
        username: username.to_owned(),
        bank_id: bank_id.to_owned(),
        region: region.to_owned(),
        currency: info.currency,
        debtor,
        creditor,
    })
}

impl Customer {
    /// The body of `POST /v1/payments` for this customer's tenant-side user.
    pub fn payment_body(&self, user_id: &str, amount: &str, redirect_uri: &str) -> Value {
        json!({
            "user_id": user_id,
            "bank_id": self.bank_id,
            "debtor_account": self.debtor,
            "creditor": self.creditor,
            "amount": {"value": amount, "currency": self.currency},
            "remittance": "kontor-bench",
            "redirect_uri": redirect_uri,
        })
    }
}
