//! The bank directory: the banks an operator configured, each with its connector, and the
//! connectors of tenants that are a third party of their own at a bank (their own credentials).

use std::collections::BTreeMap;
use std::sync::Arc;

use kontor_banks::{BankConnector, BankProfile, CertificateInfo, ClientIdentity, IdentityLabel};
use kontor_domain::TenantId;
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
    /// A tenant registered at a bank as its own third party: the connector with its
    /// credentials. Every other tenant reaches the bank with the hub's.
    own: BTreeMap<(BankId, TenantId), Arc<dyn BankConnector>>,
    /// The hub's (and tenants') certificates at the banks, for `/readyz`.
    certificates: Vec<BankCertificate>,
}

/// A certificate the hub (or a tenant) uses at a bank.
#[derive(Debug, Clone)]
pub enum BankCertificate {
    /// The TLS client identity, read again when its files change.
    Tls(Arc<ClientIdentity>),
    /// The seal that signs requests (QSealC, OBSeal), read at startup.
    Seal {
        label: IdentityLabel,
        info: Box<CertificateInfo>,
    },
}

impl BankCertificate {
    pub fn label(&self) -> &IdentityLabel {
        match self {
            Self::Tls(identity) => identity.label(),
            Self::Seal { label, .. } => label,
        }
    }

    /// The certificate in use.
    pub fn info(&self) -> CertificateInfo {
        match self {
            Self::Tls(identity) => identity.info(),
            Self::Seal { info, .. } => info.as_ref().clone(),
        }
    }
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

    /// Gives `tenant` its own connector (its own third-party credentials) at a bank added
    /// before; `false` when the bank is not in the directory.
    pub fn insert_for_tenant(
        &mut self,
        bank: &BankId,
        tenant: TenantId,
        connector: Arc<dyn BankConnector>,
    ) -> bool {
        if !self.banks.contains_key(bank) {
            return false;
        }
        self.own.insert((bank.clone(), tenant), connector);
        true
    }

    /// The connector `tenant` reaches the bank with: its own, or the hub's.
    pub fn connector(&self, id: &BankId, tenant: &TenantId) -> Option<Arc<dyn BankConnector>> {
        self.own
            .get(&(id.clone(), tenant.clone()))
            .or_else(|| self.banks.get(id).map(|(_, connector)| connector))
            .cloned()
    }

    /// Which third party `tenant` is at the bank: itself when it has its own credentials
    /// there, `None` for the hub's (shared by every tenant without their own).
    pub fn third_party(&self, bank: &BankId, tenant: &TenantId) -> Option<TenantId> {
        self.own
            .contains_key(&(bank.clone(), tenant.clone()))
            .then(|| tenant.clone())
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

    /// Records a client identity in use at a bank (for the expiry warning of `/readyz`).
    pub fn add_certificate(&mut self, identity: Arc<ClientIdentity>) {
        self.certificates.push(BankCertificate::Tls(identity));
    }

    /// Records a seal certificate in use at a bank (for the expiry warning of `/readyz`).
    pub fn add_seal(&mut self, label: IdentityLabel, info: CertificateInfo) {
        self.certificates.push(BankCertificate::Seal {
            label,
            info: Box::new(info),
        });
    }

    /// The certificates in use at the banks.
    pub fn certificates(&self) -> &[BankCertificate] {
        &self.certificates
    }

    pub fn is_empty(&self) -> bool {
        self.banks.is_empty()
    }
}
