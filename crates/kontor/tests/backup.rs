//! `kontor backup` and `kontor restore` on SQLite, against the built binary: a round trip that
//! compares every row of every table, a backup taken while the hub writes, a restored data
//! directory that serves the same data again, and the refusals (a directory in use, a damaged or
//! altered archive, PostgreSQL databases, an existing output file).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Output;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::demo::Demo;
use common::{kontor, run, serve, stdout_json};
use kontor_test_support::browser::Browser;
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

const REDIRECT: &str = "https://tenant.example/linked";

async fn token(http: &reqwest::Client, api: &str, client_id: &str, secret: &str) -> String {
    let response = http
        .post(format!("{api}/v1/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every row of every table of a SQLite file, each rendered by SQLite's own `quote()`, sorted.
async fn contents(path: &Path) -> BTreeMap<String, Vec<String>> {
    let url = format!("sqlite://{}", path.display());
    let mut conn = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut all = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let expr = columns
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let mut rows: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT {expr} FROM \"{table}\"")))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        rows.sort();
        all.insert(table, rows);
    }
    conn.close().await.unwrap();
    all
}

fn database_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db"))
        .collect();
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a refusal; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_holds_every_row_and_serves_the_same_data() {
    kontor_test_support::install_crypto_provider();
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let (demo, first) = Demo::start(&a, root.path());
    let info: Value = serde_json::from_str(&first).unwrap();
    let api = info["api_base_url"].as_str().unwrap().to_owned();
    let sandbox = info["sandbox_url"].as_str().unwrap().to_owned();
    let client_id = info["client_id"].as_str().unwrap().to_owned();
    let secret = info["client_secret"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let bearer = token(&http, &api, &client_id, &secret).await;

    // A user with a linked Berlin Group account and its transactions.
    let (status, user) = call(
        &http,
        reqwest::Method::POST,
        format!("{api}/v1/users"),
        &bearer,
        Some(json!({"external_id": "backup-alice", "region": "de"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["id"].as_str().unwrap().to_owned();
    let (status, created) = call(
        &http,
        reqwest::Method::POST,
        format!("{api}/v1/connections"),
        &bearer,
        Some(json!({"user_id": user_id, "bank_id": "sonnenbank", "redirect_uri": REDIRECT})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let connection_id = created["id"].as_str().unwrap().to_owned();
    let connect = url::Url::parse(created["connect_url"].as_str().unwrap()).unwrap();
    let back = Browser::new(&[&api, &sandbox])
        .link_through(&connect, "sonnenbank", "alice")
        .await
        .unwrap();
    assert_eq!(back.get("status").map(String::as_str), Some("active"));
    let started = Instant::now();
    let connection = loop {
        let (_, connection) = call(
            &http,
            reqwest::Method::GET,
            format!("{api}/v1/connections/{connection_id}"),
            &bearer,
            None,
        )
        .await;
        if connection["last_synced_at"].is_string() {
            break connection;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let account_id = connection["account_ids"][0].as_str().unwrap().to_owned();
    let page_path = format!("/v1/accounts/{account_id}/transactions?limit=200");
    let (status, page) = call(
        &http,
        reqwest::Method::GET,
        format!("{api}{page_path}"),
        &bearer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!page["data"].as_array().unwrap().is_empty());

    // Online: a backup while users are being created.
    let users_before = contents(&a.join("cell-de.db")).await["users"].len() as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (http, api, bearer, stop) = (http.clone(), api.clone(), bearer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = call(
                    &http,
                    reqwest::Method::POST,
                    format!("{api}/v1/users"),
                    &bearer,
                    Some(json!({"external_id": format!("writer-{n}"), "region": "de"})),
                )
                .await;
                assert_eq!(status, 201);
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let online = root.path().join("online.kontor-backup");
    let report = {
        let (a, online) = (a.clone(), online.clone());
        tokio::task::spawn_blocking(move || {
            stdout_json(&run(kontor(&a)
                .args(["backup", "--json", "--out"])
                .arg(&online)))
        })
        .await
        .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0, "the writer made no user during the backup");
    let names: Vec<&str> = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["control", "cell:de", "cell:uk"], "{report}");

    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");

    // Offline: the round trip is exact, table by table and row by row.
    let offline = root.path().join("offline.kontor-backup");
    stdout_json(&run(kontor(&a)
        .args(["backup", "--json", "--out"])
        .arg(&offline)));
    let b = root.path().join("b");
    let restored = stdout_json(&run(kontor(&b)
        .args(["restore", "--json", "--from"])
        .arg(&offline)));
    assert_eq!(restored["databases"].as_array().unwrap().len(), 3);
    assert_eq!(
        database_files(&b),
        ["cell-de.db", "cell-uk.db", "control.db"]
    );
    for file in database_files(&b) {
        let (original, copy) = (
            contents(&a.join(&file)).await,
            contents(&b.join(&file)).await,
        );
        assert!(!original.is_empty(), "{file} has no tables");
        assert_eq!(original, copy, "{file} differs after the round trip");
    }
    let rows = contents(&b.join("cell-de.db")).await;
    assert!(
        !rows["transactions"].is_empty(),
        "no transactions were backed up"
    );

    // The online backup is whole: it restores, and it holds the users made before it began and
    // some of those made while it ran, never more than were made.
    let c = root.path().join("c");
    stdout_json(&run(kontor(&c)
        .args(["restore", "--json", "--from"])
        .arg(&online)));
    let users_online = contents(&c.join("cell-de.db")).await["users"].len() as i64;
    assert!(
        users_online >= users_before && users_online <= users_before + i64::from(written),
        "{users_online} users in the online backup; {users_before} before, {written} written"
    );

    // The restored directory serves the same data, with the deployment's keys (which are not
    // in the backup) put back beside it.
    copy_dir(&a.join("secrets"), &b.join("secrets"));
    let server = serve(&b);
    let api_b = format!("http://{}", server.address);
    let bearer_b = token(&http, &api_b, &client_id, &secret).await;
    let (status, page_b) = call(
        &http,
        reqwest::Method::GET,
        format!("{api_b}{page_path}"),
        &bearer_b,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page_b}");
    assert_eq!(page_b, page, "the restored hub shows other transactions");
}

/// A fresh data directory with a tenant in it, and a backup of it.
fn small_backup(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let source = root.join("source");
    stdout_json(&run(
        kontor(&source).args(["tenants", "create", "Acme", "--json"])
    ));
    let archive = root.join("small.kontor-backup");
    stdout_json(&run(kontor(&source)
        .args(["backup", "--json", "--out"])
        .arg(&archive)));
    (source, archive)
}

/// The archive's members, by name, in order.
fn members(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn write_members(archive: &Path, members: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(archive).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    for (name, data) in members {
        // The name is written raw, so that a hostile one (`../x`) can be made too.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn restore_refuses_what_it_cannot_trust_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (_, archive) = small_backup(root.path());

    // A directory that holds something is left alone without --force, and replaced with it.
    let busy = root.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let err = failed(&run(kontor(&busy)
        .args(["restore", "--from"])
        .arg(&archive)));
    assert!(err.contains("is not empty"), "{err}");
    assert!(database_files(&busy).is_empty());
    stdout_json(&run(kontor(&busy)
        .args(["restore", "--force", "--json", "--from"])
        .arg(&archive)));
    assert_eq!(
        database_files(&busy),
        ["cell-de.db", "cell-uk.db", "control.db"]
    );

    // A database altered after the backup was made: its checksum no longer matches.
    let mut altered = members(&archive);
    assert_eq!(altered[0].0, "manifest.json");
    let control = altered
        .iter_mut()
        .find(|(name, _)| name == "control.db")
        .unwrap();
    let middle = control.1.len() / 2;
    control.1[middle] ^= 0xff;
    let altered_path = root.path().join("altered.kontor-backup");
    write_members(&altered_path, &altered);
    let target = root.path().join("altered");
    let err = failed(&run(kontor(&target)
        .args(["restore", "--from"])
        .arg(&altered_path)));
    assert!(err.contains("does not match the manifest"), "{err}");
    assert!(!target.exists() || database_files(&target).is_empty());

    // A member the manifest does not list (a path, here) is refused.
    let mut extra = members(&archive);
    extra.push(("../escape.db".to_owned(), b"x".to_vec()));
    let extra_path = root.path().join("extra.kontor-backup");
    write_members(&extra_path, &extra);
    let err = failed(&run(kontor(&root.path().join("extra"))
        .args(["restore", "--from"])
        .arg(&extra_path)));
    assert!(err.contains("does not list"), "{err}");
    assert!(!root.path().join("escape.db").exists());

    // A truncated archive is refused as damaged.
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = root.path().join("truncated.kontor-backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let target = root.path().join("truncated");
    let err = failed(&run(kontor(&target)
        .args(["restore", "--from"])
        .arg(&truncated)));
    assert!(err.contains("damaged") || err.contains("lacks"), "{err}");
    assert!(!target.exists() || database_files(&target).is_empty());

    // Something that is not a backup at all.
    let junk = root.path().join("junk");
    std::fs::write(&junk, b"not a backup").unwrap();
    let err = failed(&run(kontor(&root.path().join("junk-target"))
        .args(["restore", "--from"])
        .arg(&junk)));
    assert!(
        err.contains("not a Kontor backup") || err.contains("damaged"),
        "{err}"
    );
}

#[test]
fn backup_refuses_postgresql_and_an_existing_file() {
    let root = tempfile::tempdir().unwrap();
    let (source, archive) = small_backup(root.path());

    let err = failed(&run(kontor(&source)
        .args(["backup", "--out"])
        .arg(&archive)));
    assert!(err.contains("--force"), "{err}");
    stdout_json(&run(kontor(&source)
        .args(["backup", "--force", "--json", "--out"])
        .arg(&archive)));

    let err = failed(&run(kontor(&source)
        .env(
            "KONTOR_DATABASE__CONTROL_URL",
            "postgres://postgres@127.0.0.1:5432/kontor_control",
        )
        .args(["backup", "--out"])
        .arg(root.path().join("pg.kontor-backup"))));
    assert!(err.contains("pgBackRest"), "{err}");
    assert!(!root.path().join("pg.kontor-backup").exists());
}
