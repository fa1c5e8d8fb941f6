//! One phase of `kontor-bench reads` for one endpoint: the peak through the hub, the same SQL
//! directly (both closed loop), and the hub at a fixed offered rate (open loop).

use crate::load::{self, Measured, Plan};
use crate::open_loop::{self, OpenMeasured, RatePlan};
use crate::setup::BenchEnv;
use crate::users;

use super::ops::{self, Api, Sql};
use super::{Data, Endpoint};

pub(super) async fn closed_api(
    endpoint: Endpoint,
    plan: &Plan,
    env: &BenchEnv,
    api: &Api,
    data: &Data,
) -> anyhow::Result<Measured> {
    let probe = &env.probe;
    match endpoint {
        Endpoint::Page => load::run(plan, probe, ops::api_page(api, &data.page_account)).await,
        Endpoint::Account => load::run(plan, probe, ops::api_account(api, &data.accounts)).await,
        Endpoint::Balances => load::run(plan, probe, ops::api_balances(api, &data.accounts)).await,
        Endpoint::User => {
            let op = users::ops::api_get(&env.hub, &api.http, &api.bearer, &data.users);
            load::run(plan, probe, op).await
        }
    }
}

pub(super) async fn closed_sql(
    endpoint: Endpoint,
    plan: &Plan,
    env: &BenchEnv,
    sql: &Sql,
    data: &Data,
) -> anyhow::Result<Measured> {
    let probe = &env.probe;
    match endpoint {
        Endpoint::Page => load::run(plan, probe, ops::sql_page(sql, &data.page_account)).await,
        Endpoint::Account => load::run(plan, probe, ops::sql_account(sql, &data.accounts)).await,
        Endpoint::Balances => load::run(plan, probe, ops::sql_balances(sql, &data.accounts)).await,
        Endpoint::User => {
            let op = users::ops::sql_select(&sql.direct, &sql.tenant, &data.users);
            load::run(plan, probe, op).await
        }
    }
}

pub(super) async fn open_api(
    endpoint: Endpoint,
    rate: &RatePlan,
    env: &BenchEnv,
    api: &Api,
    data: &Data,
) -> anyhow::Result<OpenMeasured> {
    let probe = &env.probe;
    match endpoint {
        Endpoint::Page => open_loop::run(rate, probe, ops::api_page(api, &data.page_account)).await,
        Endpoint::Account => {
            open_loop::run(rate, probe, ops::api_account(api, &data.accounts)).await
        }
        Endpoint::Balances => {
            open_loop::run(rate, probe, ops::api_balances(api, &data.accounts)).await
        }
        Endpoint::User => {
            let op = users::ops::api_get(&env.hub, &api.http, &api.bearer, &data.users);
            open_loop::run(rate, probe, op).await
        }
    }
}

pub(super) fn announce(phase: &str, load: &str, plan: &Plan, round: u16, rounds: u16) {
    eprintln!(
        "kontor-bench reads: round {round}/{rounds}, {phase}: {load}, {} s warm-up, {} s measured",
        plan.warmup.as_secs(),
        plan.duration.as_secs()
    );
}
