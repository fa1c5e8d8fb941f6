//! Test scaffolding shared by Kontor's test suites: fresh databases on both backends, with the
//! PostgreSQL half skipped loudly (or failed, in CI) when no server is reachable.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test scaffolding fails loudly"
)]

mod app;
pub mod browser;
mod databases;
mod sandbox;
mod skip;

pub use app::{
    TEST_KEK, TEST_KEK_ID, TEST_SIGNING_KEY, TestApp, TestAppBuilder, TestTenant, error_code,
};
pub use databases::{Backend, TestDatabase, TestStores};
pub use sandbox::{sandbox_directory, sandbox_profiles};
pub use skip::{loud_skip, postgres_admin_url, require_postgres};

/// reqwest is built without a bundled TLS provider; tests use ring, installed once per process.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
