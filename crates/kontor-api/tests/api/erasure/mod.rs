//! Erasure that holds against copies of the cell: the attacker's test (every database file,
//! copies and a backup taken before the erasure, searched with every key the deployment has)
//! and the erasure ledger's replay onto restored cells and key stores; both on SQLite and
//! PostgreSQL.

mod attacker;
mod replay;
mod scan;

use kontor_sandbox_bank::SandboxBank;
use kontor_test_support::{Backend, TestApp, sandbox_directory};

use crate::support::{World, http_settings, test_api_settings};

/// A flow-test world on `backend` (`None` when PostgreSQL is skipped).
async fn world_on(backend: Backend, test: &str) -> Option<World> {
    let sandbox = SandboxBank::builder().seed(11).start_local().await.unwrap();
    let directory = sandbox_directory(&sandbox, &http_settings());
    let app = TestApp::builder()
        .backend(backend)
        .directory(directory)
        .api_settings(test_api_settings())
        .try_spawn(test)
        .await?;
    let tenant = app.tenant("Acme Budget").await;
    let token = app.token(&tenant).await;
    Some(World {
        app,
        sandbox,
        token,
        tenant_id: tenant.tenant_id,
    })
}
