//! The storage conformance suite: every case runs against SQLite and against PostgreSQL (a fresh
//! set of databases per test). Cases are written once, against the store traits, in the modules
//! below; `conformance!` instantiates each for both backends.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod accounts;
mod connections;
mod contention;
mod erasures;
mod gauges;
mod keys;
mod money;
mod moves;
mod moves_safety;
mod payments;
mod reconnect;
mod retry;
mod round_trips;
mod routing;
mod schema;
mod sync_state;
mod tenants;
mod user_keys;
mod users;
mod webhooks;

use kontor_test_support::{Backend, TestStores};

/// Fresh stores with cells `uk` and `de` on `backend`, or `None` if PostgreSQL is skipped.
pub async fn stores(backend: Backend, test: &str) -> Option<TestStores> {
    TestStores::new(backend, test, &["uk", "de"]).await
}

/// Declares `sqlite::case` and `postgres::case` tests for each `module::case` listed.
macro_rules! conformance {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let name = concat!("sqlite::", stringify!($module), "::", stringify!($case));
                    if let Some(stores) = super::stores(kontor_test_support::Backend::Sqlite, name).await {
                        super::$module::$case(stores).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let name = concat!("postgres::", stringify!($module), "::", stringify!($case));
                    if let Some(stores) = super::stores(kontor_test_support::Backend::Postgres, name).await {
                        super::$module::$case(stores).await;
                    }
                }
            )*
        }
    };
}

conformance! {
    gauges::gauges_count_and_age_what_waits,
    erasures::erasure_is_recorded_then_erases_and_closes,
    erasures::idempotency_records_are_erased_by_user_and_by_resource,
    erasures::retention_deletes_old_events_in_batches,
    schema::fresh_databases_are_migrated_and_reachable,
    schema::migrating_twice_applies_nothing,
    schema::a_failed_concurrent_index_build_is_built_again,
    tenants::tenant_is_created_with_its_first_client,
    tenants::client_needs_an_existing_tenant,
    tenants::revocation_keeps_the_first_time,
    tenants::clients_are_listed_per_tenant,
    tenants::redirect_uris_are_replaced_whole_per_tenant,
    tenants::branding_is_replaced_whole_per_tenant,
    tenants::certificates_are_bound_per_client,
    tenants::a_client_has_a_bounded_number_of_certificates,
    keys::the_canary_is_written_once_and_replaced_only_as_read,
    keys::the_newest_tenant_key_is_found,
    users::user_round_trips,
    users::users_are_scoped_by_tenant,
    users::external_id_is_unique_per_tenant_and_cell,
    users::pages_are_stable_and_complete,
    users::delete_erases_only_the_tenants_user,
    users::unconverted_rows_are_found_kept_unique_and_sealed,
    routing::users_live_only_in_their_home_cell,
    routing::wrong_cell_writes_are_refused_and_change_nothing,
    money::amounts_round_trip_exactly_at_the_edges,
    connections::connections_need_the_tenants_user,
    connections::state_is_single_use_and_expires,
    connections::transitions_follow_the_state_machine_and_record_events,
    connections::due_syncs_and_leases,
    connections::events_filter_and_page,
    connections::expiry_is_announced_once_until_reconfirmed,
    sync_state::leases_are_renewed_by_their_holder_only,
    sync_state::unattended_reads_are_counted_once_across_racing_processes,
    sync_state::the_last_error_and_the_first_sync_are_kept_as_they_should,
    connections::decoupled_starts_are_capped_across_requests,
    connections::newer_authorisations_sharing_accounts_are_found,
    accounts::a_sync_is_written_atomically_and_read_back,
    accounts::a_large_sync_is_written_in_runs_with_its_change_log,
    accounts::later_syncs_update_remove_and_keep_ids,
    accounts::a_failed_write_changes_nothing,
    accounts::a_long_sync_write_outlasts_its_lease_renewals,
    accounts::erasing_a_user_erases_everything_of_theirs,
    accounts::transaction_dates_are_backfilled_in_batches,
    accounts::the_transaction_page_is_read_in_index_order,
    user_keys::one_key_per_user_even_when_racing,
    user_keys::a_shredded_key_is_gone_for_good,
    user_keys::keys_kept_in_the_cell_are_taken_over,
    user_keys::the_ledger_keeps_the_first_erasure,
    payments::a_retried_creation_makes_no_second_payment,
    contention::concurrent_payments_of_one_tenant_do_not_conflict,
    contention::concurrent_users_of_one_tenant_do_not_conflict,
    payments::payment_steps_are_checked_and_recorded,
    payments::several_payments_are_read_at_once,
    payments::idempotency_keys_are_held_once_and_resumable,
    payments::concurrent_requests_with_one_key_get_one_go_ahead,
    payments::legacy_idempotency_keys_are_honoured_and_converted,
    retry::concurrent_writers_lose_no_update,
    retry::forced_conflict_is_retried_to_success,
    webhooks::attempts_recorded_together_are_counted_and_settled_each,
    webhooks::a_large_group_is_recorded_in_runs,
    webhooks::a_group_with_a_fenced_delivery_records_nothing,
    webhooks::a_dispatch_with_a_fenced_event_writes_nothing,
    webhooks::endpoints_keep_secrets_sealed_and_rotate,
    webhooks::the_outbox_is_dispatched_once,
    webhooks::claims_take_each_queue_head_in_order,
    webhooks::an_older_delivery_dispatched_late_waits_for_the_leased_one,
    webhooks::concurrent_claims_never_share_a_delivery,
    webhooks::job_leases_have_one_holder,
    webhooks::a_fence_placed_during_a_claim_keeps_its_deliveries,
    moves::a_tenant_moves_with_writes_made_while_copying,
    moves::a_frozen_subject_is_refused_and_others_write_on,
    moves::a_move_survives_a_crash_at_every_step,
    moves::a_user_moves_alone,
    moves::moves_are_refused_across_regions_to_the_same_cell_and_twice,
    moves::a_writer_that_began_before_the_fence_is_not_lost,
    moves::every_cell_table_is_attributed,
    moves::an_unswitched_move_is_aborted_cleanly,
    moves::a_key_shredded_at_the_source_during_the_move_is_shredded_at_the_target,
    moves::the_verification_reads_the_target_after_the_final_pass,
    moves_safety::the_date_backfill_leaves_a_fenced_subject_alone,
    moves_safety::a_backfill_batch_written_before_the_fence_is_not_lost,
    moves_safety::a_move_whose_copy_differs_fails_and_is_undone,
    moves_safety::a_tenant_moves_to_the_other_backend_and_back,
}

/// The freeze of a move of 100,000 transactions on PostgreSQL, measured (not asserted on time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn freeze_of_100k_transactions() {
    if let Some(stores) = stores(Backend::Postgres, "freeze_of_100k_transactions").await {
        moves::freeze_of_100k_transactions(stores).await;
    }
}
