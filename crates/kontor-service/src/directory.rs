//! The bank directory: the banks an operator configured, each with its connector.

use std::collections::BTreeMap;
use std::sync::Arc;

use kontor_banks::{BankConnector, BankProfile};
use kontor_domain::bank::BankId;

/// A bank as the directory lists it.
#[derive(Debug, Clone)]
pub struct BankEntry {
    pub profile: BankProfile,
    /// An image the connect page shows; an absolute URL or a path on the hub.
    pub logo_url: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BankDirectory {
    banks: BTreeMap<BankId, (BankEntry, Arc<dyn BankConnector>)>,
}

impl BankDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a bank with the connector that speaks its standard.
    pub fn insert(&mut self, entry: BankEntry, connector: Arc<dyn BankConnector>) {
        self.banks
            .insert(entry.profile.id.clone(), (entry, connector));
    }

    pub fn get(&self, id: &BankId) -> Option<&BankEntry> {
        self.banks.get(id).map(|(entry, _)| entry)
    }

    pub fn connector(&self, id: &BankId) -> Option<Arc<dyn BankConnector>> {
        self.banks.get(id).map(|(_, connector)| connector.clone())
    }

    /// Banks in a stable order (by name), optionally of one country (ISO 3166-1 alpha-2).
    pub fn list(&self, country: Option<&str>) -> Vec<&BankEntry> {
        let mut banks: Vec<&BankEntry> = self
            .banks
            .values()
            .map(|(entry, _)| entry)
            .filter(|e| country.is_none_or(|c| e.profile.country.eq_ignore_ascii_case(c)))
            .collect();
        banks.sort_by(|a, b| {
            a.profile
                .name
                .cmp(&b.profile.name)
                .then(a.profile.id.cmp(&b.profile.id))
        });
        banks
    }

    pub fn is_empty(&self) -> bool {
        self.banks.is_empty()
    }
}
