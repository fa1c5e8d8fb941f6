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
use std::time::Duration;

use common::demo::{Demo, token};
use common::link::call;
use common::{kontor, run, serve_with, stdout_json};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

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

/// The demo's generated key-encryption key, as `secrets.keys` would configure it.
fn demo_keks(data_dir: &Path) -> String {
    let key = std::fs::read_to_string(data_dir.join("secrets/data-encryption.key")).unwrap();
    format!(r#"[{{id="local",secret="{}"}}]"#, key.trim())
}

fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a refusal; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The demo hub as one tenant's client sees it.
struct Hub {
    http: reqwest::Client,
    api: String,
    sandbox: String,
    bearer: String,
}

impl Hub {
    async fn start(a: &Path, logs: &Path) -> (Demo, Hub, Value) {
        let (demo, first) = Demo::start(a, logs);
        let info: Value = serde_json::from_str(&first).unwrap();
        let api = info["api_base_url"].as_str().unwrap().to_owned();
        let http = reqwest::Client::new();
        let bearer = token(
            &http,
            &api,
            info["client_id"].as_str().unwrap(),
            info["client_secret"].as_str().unwrap(),
        )
        .await;
        let hub = Hub {
            http,
            api,
            sandbox: info["sandbox_url"].as_str().unwrap().to_owned(),
            bearer,
        };
        (demo, hub, info)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            method,
            format!("{}{path}", self.api),
            &self.bearer,
            body,
        )
        .await
    }

    async fn create_user(&self, external_id: &str) -> String {
        let body = json!({"external_id": external_id, "region": "de"});
        let (status, user) = self
            .call(reqwest::Method::POST, "/v1/users", Some(body))
            .await;
        assert_eq!(status, 201, "{user}");
        user["id"].as_str().unwrap().to_owned()
    }

    /// A new user with alice's accounts at Sonnenbank, synced: their id and first account's.
    async fn linked_user(&self, external_id: &str) -> (String, String) {
        let linked = common::link::Api {
            http: &self.http,
            api: &self.api,
            sandbox: &self.sandbox,
            bearer: &self.bearer,
        }
        .linked_user(external_id)
        .await;
        (linked.user_id, linked.account_id)
    }
}

/// Rows of any table of a SQLite file that mention `needle`, but for the event log (whose
/// purge is the erasure's, not the restore's).
async fn mentions(path: &Path, needle: &str) -> Vec<String> {
    contents(path)
        .await
        .into_iter()
        .filter(|(table, _)| !table.starts_with("event") && !table.starts_with("webhook_"))
        .flat_map(|(table, rows)| {
            rows.into_iter()
                .filter(|row| row.contains(needle))
                .map(move |row| format!("{table}: {row}"))
        })
        .collect()
}

/// Neither the cell nor the key store of `dir` holds anything of `user` (the key store's list of
/// shredded ids aside, which is how it refuses to make them a key again).
async fn assert_erased(dir: &Path, user: &str) {
    let found = mentions(&dir.join("cell-de.db"), user).await;
    assert!(
        found.is_empty(),
        "the cell still holds the erased user: {found:?}"
    );
    let keys = contents(&dir.join("keys/de.db")).await;
    assert!(
        !keys["user_keys"].iter().any(|row| row.contains(user)),
        "the key store still holds the erased user's key"
    );
    assert!(
        keys["shredded_user_keys"]
            .iter()
            .any(|row| row.contains(user))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_erased_after_a_backup_stays_erased_when_it_is_restored() {
    kontor_test_support::install_crypto_provider();
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let (demo, hub, _) = Hub::start(&a, root.path()).await;
    let (erased, _) = hub.linked_user("erase-me").await;
    let kept = hub.create_user("keep-me").await;
    assert!(!mentions(&a.join("keys/de.db"), &erased).await.is_empty());

    // Backups of the data and of the key stores, both from before the erasure.
    let data = root.path().join("data.kontor-backup");
    stdout_json(&run(kontor(&a)
        .args(["backup", "--json", "--out"])
        .arg(&data)));
    let keys = root.path().join("keys.kontor-backup");
    stdout_json(&run(kontor(&a)
        .args(["backup", "--key-stores", "--json", "--out"])
        .arg(&keys)));
    let (status, _) = hub
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/users/{erased}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");
    let live_control = root.path().join("live-control.db");
    std::fs::copy(a.join("control.db"), &live_control).unwrap();

    // The data rewound in place: the ledger of the control database it replaces is kept and
    // replayed, so the erased user is erased again, and the other one is back.
    let report = stdout_json(&run(kontor(&a)
        .args(["restore", "--force", "--json", "--from"])
        .arg(&data)));
    assert_eq!(report["erasures_carried"], 1, "{report}");
    assert_eq!(report["replay"]["users_erased"], 1, "{report}");
    assert_erased(&a, &erased).await;
    assert!(!mentions(&a.join("cell-de.db"), &kept).await.is_empty());

    // Both backups into a new directory, with a copy of the live control database's ledger:
    // the key comes back with the key stores' backup and is shredded at once.
    let c = root.path().join("c");
    let report = stdout_json(&run(kontor(&c)
        .args(["restore", "--json", "--from"])
        .arg(&data)
        .arg("--ledger-from")
        .arg(&live_control)));
    assert!(report["replay"].is_null(), "{report}");
    let report = stdout_json(&run(kontor(&c)
        .args(["restore", "--json", "--from"])
        .arg(&keys)));
    assert_eq!(report["replay"]["keys_shredded"], 1, "{report}");
    assert_eq!(report["replay"]["users_erased"], 1, "{report}");
    assert_erased(&c, &erased).await;
    assert!(!mentions(&c.join("cell-de.db"), &kept).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_holds_every_row_and_serves_the_same_data() {
    kontor_test_support::install_crypto_provider();
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let (demo, hub, info) = Hub::start(&a, root.path()).await;
    let client_id = info["client_id"].as_str().unwrap().to_owned();
    let secret = info["client_secret"].as_str().unwrap().to_owned();
    let (http, api, bearer) = (hub.http.clone(), hub.api.clone(), hub.bearer.clone());

    // A user with a linked Berlin Group account and its transactions.
    let (_, account_id) = hub.linked_user("backup-alice").await;
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

    // Offline: the round trip is exact, table by table and row by row, for the data and for
    // the key stores (two archives: the key stores' are kept briefly).
    let offline = root.path().join("offline.kontor-backup");
    stdout_json(&run(kontor(&a)
        .args(["backup", "--json", "--out"])
        .arg(&offline)));
    let keys = root.path().join("keys.kontor-backup");
    let report = stdout_json(&run(kontor(&a)
        .args(["backup", "--key-stores", "--json", "--out"])
        .arg(&keys)));
    assert_eq!(report["contents"], "key-stores");
    let b = root.path().join("b");
    let restored = stdout_json(&run(kontor(&b)
        .args(["restore", "--json", "--from"])
        .arg(&offline)));
    assert_eq!(restored["databases"].as_array().unwrap().len(), 3);
    assert!(
        restored["replay"].is_null(),
        "replayed without key stores: {restored}"
    );
    let restored = stdout_json(&run(kontor(&b)
        .args(["restore", "--json", "--from"])
        .arg(&keys)));
    assert_eq!(restored["replay"]["users_erased"], 0, "{restored}");
    assert_eq!(
        database_files(&b),
        ["cell-de.db", "cell-uk.db", "control.db"]
    );
    assert_eq!(database_files(&b.join("keys")), ["de.db", "uk.db"]);
    for file in database_files(&b)
        .into_iter()
        .chain(["keys/de.db".to_owned(), "keys/uk.db".to_owned()])
    {
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

    // The restored directory serves the same data, with the deployment's key-encryption key
    // (never in a backup) configured.
    copy_dir(&a.join("secrets"), &b.join("secrets"));
    let server = serve_with(&b, &[("KONTOR_SECRETS__KEYS", &demo_keks(&a))]);
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
