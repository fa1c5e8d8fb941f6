//! Kontor's application services, shared by the API and the worker: the bank directory, linking
//! bank accounts (connect flow), the connection lifecycle, syncing within the consent's rules,
//! reading the synced data with its personal parts opened, and delivering events by webhook.
//! Everything personal that comes from a bank is sealed with the user's data key before it is
//! stored.

mod assembly;
mod branding;
mod changes;
mod details;
mod directory;
mod erasure;
mod error;
mod error_code;
mod error_meaning;
mod export;
mod gauges;
mod hub;
mod key_cache;
mod keycheck;
mod lease;
mod lifecycle;
mod link;
mod link_page;
mod link_return;
mod link_start;
mod lists;
mod lookup;
mod owners;
mod payments;
mod placement;
mod reads;
mod records;
mod redirect_uri;
mod retention;
mod routing;
pub mod schedule;
mod shred;
mod supersession;
mod sync;
mod tokens;
mod users;
mod vault;
pub mod webhooks;

pub use assembly::HubParts;
pub use changes::{RemovedTransaction, TransactionChanges};
pub use details::{AccountDetails, AccountView, TransactionDetails, TransactionView};
pub use directory::{BankCertificate, BankDirectory, BankEntry};
pub use erasure::{ErasureRound, REVOCATION_ATTEMPTS};
pub use error::{ErrorCode, ServiceError, ServiceResult};
pub use export::{EXPORT_BATCH, ExportItem, UserExport};
pub use hub::{Hub, HubSettings};
pub use keycheck::KeyStatus;
pub use link::{
    CreatedLink, LinkPage, LinkRequest, MAX_DECOUPLED_STARTS, NextStep, ScaChoice,
    redirect_for as redirect_url,
};
pub use lists::ListedConnection;
pub use payments::{
    AcceptedPayment, PaymentDetails, PaymentOrder, PaymentPage, PaymentSettings, PaymentView,
    StoredAccount, payment_redirect,
};
pub use placement::{CellPolicy, PlacementSettings};
pub use records::DatabaseCheck;
pub use redirect_uri::{MAX_REDIRECT_URI_LEN, normalise_redirect_uri};
pub use retention::RetentionSettings;
pub use routing::RouteSettings;
pub use shred::{KeyMoveReport, ReplayReport, move_keys_out_of_cells, replay_erasures};
pub use sync::{AccountChanges, SyncReport, SyncTrigger};
pub use tokens::{hash_token, random_token};
pub use vault::Vault;
pub use webhooks::{Deliverer, WebhookSettings};

use kontor_banks::BankError;

/// Runs `work` (a request) with every bank call in it bounded to `limit` in all: past it a bank
/// call answers `bank_unavailable` instead of keeping the caller waiting. A limit inside another
/// one never extends it.
pub async fn within_bank_deadline<F: Future>(limit: std::time::Duration, work: F) -> F::Output {
    kontor_banks::deadline::within(limit, work).await
}

/// Why the bank refused a request, as a payment's status reason: the bank's own error code when
/// it gave one (an ASCII token such as `PRODUCT_INVALID`; its free-text message may quote
/// personal data and is left out), else the hub's code for the error.
pub fn bank_reason(err: &BankError) -> String {
    match err {
        BankError::Rejected { code, .. } if !err.is_invalid_request() => {
            let code: String = code
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                .take(70)
                .collect();
            if code.is_empty() {
                ErrorCode::of_bank(err).as_str().to_owned()
            } else {
                code
            }
        }
        other => ErrorCode::of_bank(other).as_str().to_owned(),
    }
}
