//! The hub put together from its parts, one way for every process: `kontor serve`, `kontor
//! worker`, `kontor migrate` and `kontor demo` (through the binary's wiring, which reads the
//! parts from configuration) and the API tests' `TestApp` (which makes fresh databases) call
//! [`Hub::assemble`], so what the tests run is what the binary runs.

use std::sync::Arc;
use std::time::Duration;

use kontor_crypto::Keyring;
use kontor_domain::Clock;
use kontor_store::{Cells, ControlStore, KeyStores};

use crate::directory::BankDirectory;
use crate::hub::{Hub, HubSettings};
use crate::vault::Vault;

/// Everything a hub is made of.
pub struct HubParts {
    /// One store per served region.
    pub cells: Cells,
    pub control: Arc<dyn ControlStore>,
    /// One key store per served region: the users' wrapped data keys.
    pub key_stores: KeyStores,
    /// The key-encryption keys that wrap the data keys.
    pub keyring: Keyring,
    /// How long a user's unwrapped data key stays in memory (`database.data_key_cache_ms`);
    /// zero keeps none.
    pub data_key_cache: Duration,
    pub directory: BankDirectory,
    pub settings: HubSettings,
    /// Where the hub reads "now": the system's clock, or a test's that it moves.
    pub clock: Clock,
}

impl std::fmt::Debug for HubParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubParts")
            .field("data_key_cache", &self.data_key_cache)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// The hub of a process, from its parts.
    pub fn assemble(parts: HubParts) -> Hub {
        let vault =
            Vault::new(parts.keyring, parts.key_stores).with_key_cache(parts.data_key_cache);
        Hub::new(
            parts.cells,
            parts.control,
            parts.directory,
            vault,
            parts.settings,
            parts.clock,
        )
    }
}
