//! Crypto-shredding: erasing a user destroys their data key, which leaves everything sealed with
//! it unreadable wherever a copy of the cell lies. The erasure is written to the ledger in the
//! control database before anything is destroyed, so a crash part-way is finished by replaying
//! the ledger, and replaying it onto restored cells and key stores keeps a restore from bringing
//! an erased user back. Also here: moving the keys an earlier release kept in the cells into the
//! key stores.

use kontor_domain::{TenantId, UserId};
use kontor_store::{Cells, ControlStore, Erasure, KeyStores, StoreError};

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// How many ledger entries (or legacy keys) are read at a time.
const BATCH: usize = 500;

/// What a replay of the erasure ledger did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Entries in the ledger.
    pub entries: u64,
    /// Keys that were found again (in a restored key store) and shredded.
    pub keys_shredded: u64,
    /// Users that were found again (in a restored cell) and erased.
    pub users_erased: u64,
    /// Entries of regions this deployment does not serve (left alone).
    pub unserved: u64,
}

/// What moving the cells' keys into the key stores did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyMoveReport {
    /// Keys copied into a key store now.
    pub moved: u64,
    /// Keys cleared from a cell (moved now or by an earlier, interrupted run).
    pub cleared: u64,
}

impl Hub {
    /// The user's part of an erasure that survives copies of the cell: records the erasure in
    /// the ledger, then shreds the user's data key in the region's key store. `NotFound` when
    /// the tenant has no such user. The caller erases the user's rows afterwards; if it crashes
    /// first, [`Hub::replay_erasures`] finishes the job.
    pub async fn shred_user_key(&self, tenant: &TenantId, user: &UserId) -> ServiceResult<()> {
        let cell = self.cell_for_user(Some(tenant), user)?;
        cell.user(tenant, user).await?;
        self.control()
            .record_erasure(&Erasure {
                user_id: user.clone(),
                tenant_id: tenant.clone(),
                region: user.region().clone(),
                erased_at: self.clock().now(),
            })
            .await?;
        self.vault()
            .key_store_of(cell, user)?
            .shred_user_key(user)
            .await?;
        self.vault().forget_user_key(user);
        tracing::info!(user.id = %user, "user's data key shredded");
        Ok(())
    }

    /// See [`replay_erasures`], over this hub's stores.
    pub async fn replay_erasures(&self) -> ServiceResult<ReplayReport> {
        let report = replay_erasures(self.control(), self.cells(), self.vault().key_stores()).await;
        self.vault().forget_user_keys();
        report
    }
}

/// Applies the whole erasure ledger again: every erased user's key that a key store holds
/// (restored from a backup) is shredded, and every erased user a cell holds is erased.
/// Idempotent; costs two reads per entry when there is nothing to do.
pub async fn replay_erasures(
    control: &dyn ControlStore,
    cells: &Cells,
    keys: &KeyStores,
) -> ServiceResult<ReplayReport> {
    let mut report = ReplayReport::default();
    // A moved user's rows and key are in the route's target; a restored backup may hold them
    // in their home again: both are looked at.
    let routes = control.cell_routes().await?;
    let mut after: Option<UserId> = None;
    loop {
        let page = control.erasures(after.as_ref(), BATCH).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        for erasure in &page {
            report.entries += 1;
            let home = erasure.user_id.cell();
            let routed = kontor_store::current_cell(
                &routes,
                &erasure.tenant_id,
                Some(&erasure.user_id),
                &home.to_string(),
            )
            .to_owned();
            let mut places = vec![home.clone()];
            if let Ok(routed) = kontor_domain::CellId::parse(&routed)
                && routed != *home
            {
                places.push(routed);
            }
            for place in &places {
                replay_one(cells, keys, place, erasure, &mut report).await?;
            }
        }
    }
    if report.keys_shredded + report.users_erased > 0 {
        tracing::warn!(
            keys_shredded = report.keys_shredded,
            users_erased = report.users_erased,
            "erased users were found again (a restored backup?) and erased again"
        );
    }
    Ok(report)
}

async fn replay_one(
    cells: &Cells,
    keys: &KeyStores,
    place: &kontor_domain::CellId,
    erasure: &Erasure,
    report: &mut ReplayReport,
) -> ServiceResult<()> {
    let user = &erasure.user_id;
    let (Ok(cell), Ok(store)) = (cells.get(place), keys.get(place)) else {
        report.unserved += 1;
        return Ok(());
    };
    let held = store.user_key(user).await?;
    if held.is_some() && store.shred_user_key(user).await? {
        report.keys_shredded += 1;
    }
    match cell.user(&erasure.tenant_id, user).await {
        Ok(_) => match cell.delete_user(&erasure.tenant_id, user, None).await {
            Ok(()) => report.users_erased += 1,
            Err(StoreError::NotFound) => {}
            Err(other) => return Err(ServiceError::Store(other)),
        },
        Err(StoreError::NotFound) => {}
        Err(other) => return Err(ServiceError::Store(other)),
    }
    Ok(())
}

/// Moves the data keys an earlier release kept in the cells (`users.data_key`) into the
/// regions' key stores, then clears them from the cells. Idempotent and resumable: a key is
/// cleared only once the key store holds it (or the user was erased).
pub async fn move_keys_out_of_cells(
    cells: &Cells,
    keys: &KeyStores,
) -> ServiceResult<KeyMoveReport> {
    let mut report = KeyMoveReport::default();
    for (region, cell) in cells.iter() {
        let store = keys.get(region)?;
        let mut after: Option<UserId> = None;
        loop {
            let page = cell.legacy_data_keys(after.as_ref(), BATCH).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (user, wrapped) in &page {
                if store.import_user_key(user, wrapped).await? {
                    report.moved += 1;
                }
                if cell.clear_legacy_data_key(user, wrapped).await? {
                    report.cleared += 1;
                }
            }
        }
    }
    if report.moved + report.cleared > 0 {
        tracing::info!(
            moved = report.moved,
            cleared = report.cleared,
            "data keys moved from the cells into the key stores"
        );
    }
    Ok(report)
}
