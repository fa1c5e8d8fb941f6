//! What an operator meets at the command line: a refused start that says what to set, a
//! database that cannot be reached named with what to check (never its password), no sqlx
//! chatter in the log, and `kontor tenants update` setting a tenant's branding.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use common::{TEST_KEKS, kontor, run, stdout_json};
use kontor_test_support::TestDatabase;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_and_worker_refuse_an_unspecified_address_without_a_public_url() {
    let dir = tempfile::tempdir().unwrap();
    for command in [&["serve", "--listen", "0.0.0.0:0"][..], &["worker"][..]] {
        let output = run(kontor(dir.path())
            .args(command)
            // Development lifts the https rule, which would otherwise refuse first.
            .env("KONTOR_DEVELOPMENT", "true")
            .env("KONTOR_SERVER__LISTEN", "0.0.0.0:0")
            .env("KONTOR_SECRETS__KEYS", TEST_KEKS));
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains("server.public_url is not set")
                && stderr.contains("0.0.0.0")
                && stderr.contains("KONTOR_SERVER__PUBLIC_URL"),
            "{command:?}: {stderr}"
        );
    }
}

#[test]
fn an_unreachable_database_is_named_with_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: refused at once.
    let output = run(kontor(dir.path())
        .args(["tenants", "list"])
        .env(
            "KONTOR_DATABASE__CONTROL_URL",
            "postgres://kontor:s3cret-pw@127.0.0.1:1/kontor_control",
        )
        .env("KONTOR_DATABASE__ACQUIRE_TIMEOUT_MS", "1500"));
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the control database (127.0.0.1:1/kontor_control, database.control_url)"),
        "{stderr}"
    );
    assert!(stderr.contains("is running and reachable"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");

    let output = run(kontor(dir.path())
        .arg("migrate")
        .env(
            "KONTOR_CELLS__DE__URL",
            "postgres://kontor:s3cret-pw@127.0.0.1:1/kontor_de",
        )
        .env(
            "KONTOR_CELLS__DE__KEYS_URL",
            "postgres://kontor:s3cret-pw@127.0.0.1:1/kontor_de_keys",
        )
        .env("KONTOR_DATABASE__ACQUIRE_TIMEOUT_MS", "1500"));
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the de cell database (127.0.0.1:1/kontor_de, cells.de.url)"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
}

/// PostgreSQL answers `CREATE … IF NOT EXISTS` with a NOTICE, which sqlx logs at INFO; at the
/// default level `kontor migrate` logs only its own lines.
#[tokio::test]
async fn migrate_logs_no_sqlx_lines_at_the_default_level() {
    let test = "migrate_logs_no_sqlx_lines_at_the_default_level";
    let (Some(control), Some(cell), Some(keys)) = (
        TestDatabase::postgres(test).await,
        TestDatabase::postgres(test).await,
        TestDatabase::postgres(test).await,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let migrate = || {
        run(kontor(dir.path())
            .arg("migrate")
            .env("KONTOR_LOG__LEVEL", "info")
            .env("KONTOR_DATABASE__CONTROL_URL", &control.url)
            .env("KONTOR_CELLS__DE__URL", &cell.url)
            .env("KONTOR_CELLS__DE__KEYS_URL", &keys.url))
    };
    for round in ["first", "second"] {
        let output = migrate();
        let stderr = stderr_of(&output);
        assert!(output.status.success(), "{round}: {stderr}");
        assert!(
            stderr.contains("kontor"),
            "{round}: no log at all: {stderr}"
        );
        assert!(
            !stderr.contains("\"target\":\"sqlx"),
            "{round} migrate logged sqlx lines:\n{stderr}"
        );
    }
}

#[test]
fn tenants_update_sets_checks_and_clears_the_branding() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = stdout_json(&run(kontor(dir.path()).args([
        "tenants",
        "create",
        "Acme Budget Ltd",
        "--json",
    ])));
    let id = tenant["tenant_id"].as_str().unwrap();
    let updated = stdout_json(&run(kontor(dir.path()).args([
        "tenants",
        "update",
        id,
        "--display-name",
        "Acme",
        "--logo-url",
        "https://cdn.acme.example/logo.svg",
        "--accent-color",
        "#14D",
        "--json",
    ])));
    assert_eq!(updated["branding"]["display_name"], "Acme");
    assert_eq!(
        updated["branding"]["logo_url"],
        "https://cdn.acme.example/logo.svg"
    );
    assert_eq!(updated["branding"]["accent_color"], "#1144dd");
    assert_eq!(updated["redirect_uris"], serde_json::json!([]));

    // Bad values are refused, naming the flag, and change nothing.
    for (flag, value) in [
        ("--logo-url", "http://cdn.acme.example/logo.svg"),
        ("--logo-url", "https://cdn.acme.example/\"><script>"),
        ("--accent-color", "blue"),
        ("--accent-color", "#12345"),
    ] {
        let output = run(kontor(dir.path()).args(["tenants", "update", id, flag, value]));
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }

    // One part changes, the others stay; "" removes a part.
    let updated = stdout_json(&run(kontor(dir.path()).args([
        "tenants",
        "update",
        id,
        "--logo-url",
        "",
        "--json",
    ])));
    assert_eq!(updated["branding"]["display_name"], "Acme");
    assert_eq!(updated["branding"]["logo_url"], serde_json::Value::Null);
    assert_eq!(updated["branding"]["accent_color"], "#1144dd");

    let output = run(kontor(dir.path()).args([
        "tenants",
        "update",
        "ten_01h8x3k4q9c2m7v5t6r8w0y1z2",
        "--accent-color",
        "#000",
    ]));
    assert!(
        stderr_of(&output).contains("no tenant"),
        "{}",
        stderr_of(&output)
    );
}
