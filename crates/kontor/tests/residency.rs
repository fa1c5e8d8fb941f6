//! `kontor residency check` against a data directory: a clean deployment has no finding; rows
//! planted on purpose (another region's user, plaintext in sealed columns, personal data in a
//! plaintext column, user-linked data in the control database, a bad row in a backup) are each
//! found, and the exit code says so.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::path::Path;

use common::{kontor, run, stdout_json};
use serde_json::Value;
use sqlx::any::AnyPoolOptions;

const GOOD_USER: &str = "usr_de_0000000000000000000000000a";
const UK_USER: &str = "usr_uk_0000000000000000000000000b";
const PLAIN_USER: &str = "usr_de_0000000000000000000000000c";

async fn exec(file: &Path, sql: &str, binds: &[&str]) {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for bind in binds {
        query = query.bind(*bind);
    }
    query.execute(&pool).await.unwrap();
    pool.close().await;
}

async fn user(cell: &Path, id: &str, index: &str, sealed: &str) {
    exec(
        cell,
        "INSERT INTO users (id, tenant_id, external_id, external_id_sealed, created_at) \
         VALUES ($1, 'ten_0000000000000000000000000a', $2, $3, 1)",
        &[id, index, sealed],
    )
    .await;
}

fn check(dir: &Path, backup: Option<&Path>) -> (bool, Value) {
    let mut cmd = kontor(dir);
    cmd.args(["residency", "check", "--json"]);
    if let Some(backup) = backup {
        cmd.arg(backup);
    }
    let output = run(&mut cmd);
    let text = String::from_utf8(output.stdout).unwrap();
    (
        output.status.success(),
        serde_json::from_str(&text).unwrap(),
    )
}

fn kinds(report: &Value) -> Vec<(String, String, String)> {
    let mut kinds: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["database"].as_str().unwrap().to_owned(),
                format!(
                    "{}.{}",
                    f["table"].as_str().unwrap(),
                    f["column"].as_str().unwrap()
                ),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn every_planted_kind_is_found_and_a_clean_deployment_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let migrated = stdout_json(&run(kontor(&data).args(["migrate", "--json"])));
    assert!(migrated.get("control").is_some(), "{migrated}");
    let cell = data.join("cell-de.db");
    let control = data.join("control.db");
    user(&cell, GOOD_USER, "xi1.AAAA", "s1.BBBB").await;

    let (ok, report) = check(&data, None);
    assert!(ok, "{report}");
    assert_eq!(report["findings"], serde_json::json!([]));

    // A copy taken now is a clean backup.
    let backup = dir.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    std::fs::copy(&cell, backup.join("cell-de.db")).unwrap();
    let (ok, report) = check(&data, Some(&backup));
    assert!(ok, "{report}");

    user(&cell, UK_USER, "xi1.CCCC", "s1.DDDD").await;
    user(&cell, PLAIN_USER, "ada@example.com", r#"{"name":"Ada"}"#).await;
    exec(
        &cell,
        "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) \
         VALUES ('evt_de_0000000000000000000000000a', 'ten_0000000000000000000000000a', $1, \
         'payment.created', '{\"iban\":\"DE89370400440532013000\"}', 1)",
        &[GOOD_USER],
    )
    .await;
    exec(
        &control,
        "INSERT INTO tenants (id, name, created_at) VALUES ('ten_0000000000000000000000000b', \
         'Ada <ada@example.com>', 1)",
        &[],
    )
    .await;
    exec(
        &control,
        "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash, resource_id, \
         state, created_at) VALUES ('ten_0000000000000000000000000b', 'order-1', 'rh1.x', $1, \
         'done', 1)",
        &[PLAIN_USER],
    )
    .await;
    user(&backup.join("cell-de.db"), UK_USER, "xi1.EEEE", "s1.FFFF").await;

    let (ok, report) = check(&data, Some(&backup));
    assert!(!ok, "findings make the exit code non-zero: {report}");
    let backup_name = backup.join("cell-de.db").display().to_string();
    let expected: Vec<(String, String, String)> = vec![
        (backup_name, "users.id".into(), "wrong_region".into()),
        (
            "cell de".into(),
            "events.data".into(),
            "personal_data_in_plaintext".into(),
        ),
        (
            "cell de".into(),
            "users.external_id".into(),
            "plaintext_in_sealed_column".into(),
        ),
        (
            "cell de".into(),
            "users.external_id_sealed".into(),
            "plaintext_in_sealed_column".into(),
        ),
        ("cell de".into(), "users.id".into(), "wrong_region".into()),
        (
            "control".into(),
            "idempotency_keys.idempotency_key".into(),
            "plaintext_in_sealed_column".into(),
        ),
        (
            "control".into(),
            "idempotency_keys.resource_id".into(),
            "user_data_in_control".into(),
        ),
        (
            "control".into(),
            "tenants.name".into(),
            "user_data_in_control".into(),
        ),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(kinds(&report), expected, "{report}");
    // The report names what it saw, never the value.
    let text = report.to_string();
    assert!(!text.contains("ada@example.com") && !text.contains("DE89370400440532013000"));
    assert!(
        text.contains("an e-mail address") && text.contains("JSON") && text.contains("an IBAN")
    );

    // Human output: one line per finding and a total.
    let output = run(kontor(&data).args(["residency", "check"]));
    assert!(!output.status.success());
    let human = String::from_utf8(output.stdout).unwrap();
    assert_eq!(human.lines().count(), 8, "{human}");
    assert!(
        human.ends_with("7 finding(s) in 3 database(s)\n"),
        "{human}"
    );
}
