//! The attacker's test. A user is linked at the sandbox bank and synced; copies of every cell
//! database file and a backup of each cell are taken; the user is erased through the API. Then,
//! holding every key-encryption key of the deployment, the attacker searches the live files, the
//! copies and the backups for the user's data key (wrapped and in clear), their IBANs, names and
//! transaction texts, and tries to open every sealed value: nothing may be readable. The same
//! search run before the erasure does read the user's data, so the test can fail.

use kontor_domain::UserId;
use kontor_store::UserKeyStore;
use kontor_test_support::{Backend, TEST_KEK};
use serde_json::Value;

use super::scan::{Attacker, Blob, unwrap};
use super::world_on;
use crate::support::World;

#[tokio::test]
async fn sqlite_an_erased_user_is_unreadable_everywhere() {
    if let Some(w) = world_on(Backend::Sqlite, "sqlite::erasure::attacker").await {
        attack(w).await;
    }
}

#[tokio::test]
async fn postgres_an_erased_user_is_unreadable_everywhere() {
    if let Some(w) = world_on(Backend::Postgres, "postgres::erasure::attacker").await {
        attack(w).await;
    }
}

/// String values under `keys`, anywhere in `value`, long enough not to match by chance.
fn strings_under(value: &Value, keys: &[&str], out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let Value::String(s) = v
                    && keys.contains(&k.as_str())
                    && s.len() >= 8
                    && !out.contains(s)
                {
                    out.push(s.clone());
                }
                strings_under(v, keys, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, keys, out)),
        _ => {}
    }
}

/// What the attacker is after, as the tenant saw it through the API before the erasure:
/// personal data (IBANs first) and the contexts of the user's sealed values.
async fn targets(w: &World, user: &str, connection: &str) -> (Vec<String>, Vec<String>) {
    let accounts: Value = w
        .app
        .get(&format!("/v1/accounts?user_id={user}"), &w.token)
        .await
        .json()
        .await
        .unwrap();
    let accounts = accounts["data"].as_array().unwrap().clone();
    assert!(!accounts.is_empty());
    let mut needles = Vec::new();
    strings_under(&Value::Array(accounts.clone()), &["iban"], &mut needles);
    assert!(!needles.is_empty(), "the sandbox gives IBANs: {accounts:?}");
    strings_under(
        &Value::Array(accounts.clone()),
        &["owner_name"],
        &mut needles,
    );
    let mut contexts = vec![
        format!("connections/{connection}/session"),
        format!("connections/{connection}/psu_id"),
        format!("connections/{connection}/first-sync-ip"),
    ];
    let mut texts = Vec::new();
    for account in &accounts {
        let id = account["id"].as_str().unwrap();
        contexts.push(format!("accounts/{id}/details"));
        let transactions = w.all_transactions(id, "").await;
        for t in &transactions {
            contexts.push(format!(
                "transactions/{}/details",
                t["id"].as_str().unwrap()
            ));
        }
        strings_under(
            &Value::Array(transactions),
            &["remittance", "name", "account"],
            &mut texts,
        );
    }
    assert!(!texts.is_empty(), "the sandbox gives transaction texts");
    needles.extend(texts);
    (needles, contexts)
}

fn read_if_there(path: &str) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Every file of every SQLite database (with its -wal and -shm), named `prefix:database:file`.
fn sqlite_files(w: &World, prefix: &str, only_cells: bool) -> Vec<Blob> {
    let mut blobs = Vec::new();
    for (name, url) in &w.app.stores.urls {
        if only_cells && (name == "control" || name.starts_with("keys:")) {
            continue;
        }
        let path = url.strip_prefix("sqlite://").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            if let Some(bytes) = read_if_there(&format!("{path}{suffix}")) {
                blobs.push(Blob {
                    name: format!("{prefix}:{name}{suffix}"),
                    bytes,
                });
            }
        }
    }
    blobs
}

/// Every file of the database's own tables, indexes and TOAST, read from the server's disk
/// after a checkpoint (the test server's superuser may), named `prefix:database:path`. The
/// system catalogs are left out: they hold no row of Kontor's, and scanning them is slow.
async fn postgres_files(pool: &sqlx::AnyPool, prefix: &str, name: &str) -> Vec<Blob> {
    sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
    let paths: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT pg_relation_filepath(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 't', 'i', 'm') AND n.nspname IN ('public', 'pg_toast')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut blobs = Vec::new();
    for path in paths.into_iter().flatten() {
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT pg_read_binary_file($1, 0, 104857600, true)")
                .bind(&path)
                .fetch_one(pool)
                .await
                .unwrap();
        if let Some(bytes) = bytes.filter(|b| !b.is_empty()) {
            blobs.push(Blob {
                name: format!("{prefix}:{name}:{path}"),
                bytes,
            });
        }
    }
    blobs
}

/// `pg_dump` of a database, as a backup would be taken.
fn pg_dump(url: &str, name: &str) -> Blob {
    let output = std::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(url)
        .output()
        .expect("pg_dump is installed beside the test server");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Blob {
        name: name.to_owned(),
        bytes: output.stdout,
    }
}

fn pool_of(w: &World, name: &str) -> sqlx::AnyPool {
    let stores = &w.app.stores;
    if name == "control" {
        stores.raw_control_pool()
    } else if let Some(region) = name.strip_prefix("keys:") {
        stores.key_store(region).database().pool().clone()
    } else {
        stores.raw_cell_pool(name)
    }
}

/// What an attacker may read of the live deployment: every database's files (and, on
/// PostgreSQL, a dump of each as well).
async fn live(w: &World) -> Vec<Blob> {
    match w.app.stores.backend {
        Backend::Sqlite => sqlite_files(w, "live", false),
        Backend::Postgres => {
            let mut blobs = Vec::new();
            for (name, url) in &w.app.stores.urls {
                blobs.extend(postgres_files(&pool_of(w, name), "live", name).await);
                blobs.push(pg_dump(url, &format!("live-dump:{name}")));
            }
            blobs
        }
    }
}

/// Copies of every cell database file, and a backup of every cell, taken now.
async fn copies_and_backups(w: &World, dir: &std::path::Path) -> Vec<Blob> {
    let mut blobs = Vec::new();
    for (name, url) in &w.app.stores.urls {
        if name == "control" || name.starts_with("keys:") {
            continue;
        }
        match w.app.stores.backend {
            Backend::Sqlite => {
                let backup = dir.join(format!("backup-{name}.db"));
                let sql = format!("VACUUM INTO '{}'", backup.display());
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool_of(w, name))
                    .await
                    .unwrap();
                blobs.push(Blob {
                    name: format!("backup:{name}"),
                    bytes: std::fs::read(&backup).unwrap(),
                });
            }
            Backend::Postgres => {
                blobs.extend(postgres_files(&pool_of(w, name), "copy", name).await);
                blobs.push(pg_dump(url, &format!("backup:{name}")));
            }
        }
    }
    if w.app.stores.backend == Backend::Sqlite {
        blobs.extend(sqlite_files(w, "copy", true));
    }
    blobs
}

/// Waits for the first sync, longer than the flow tests do: this test also runs on PostgreSQL
/// on a busy machine.
async fn synced(w: &World, connection: &str) {
    for _ in 0..1200 {
        let state = w.connection(connection).await;
        if state["last_synced_at"].is_string() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "connection {connection} never synced: {}",
        w.connection(connection).await
    );
}

async fn attack(w: World) {
    let (user, connection, _) = w.link("alice", "sonnenbank").await;
    synced(&w, &connection).await;
    let (needles, contexts) = targets(&w, &user, &connection).await;
    let user_id = UserId::parse(&user).unwrap();
    let region = user_id.region().as_str().to_owned();
    let wrapped = w
        .app
        .stores
        .key_store(&region)
        .user_key(&user_id)
        .await
        .unwrap()
        .expect("the user's key is in the key store");
    let data_key = unwrap(&wrapped, &TEST_KEK, &user).expect("the attacker's unwrap works");
    let keks = [TEST_KEK];
    let attacker = Attacker {
        keks: &keks,
        owner: &user,
        contexts: &contexts,
        needles: &needles,
        data_key: Some(data_key),
    };

    let dir = tempfile::tempdir().unwrap();
    let before = copies_and_backups(&w, dir.path()).await;
    assert!(
        before.iter().any(|b| b.name.starts_with("backup:"))
            && before.iter().any(|b| b.name.starts_with("copy:")),
        "copies and backups were taken"
    );

    // Before the erasure the same search reads the user's data: the key is in the live key
    // store, and opens the sealed values in the copies and the backups.
    let mut readable = live(&w).await;
    readable.extend(before.iter().map(|b| Blob {
        name: b.name.clone(),
        bytes: b.bytes.clone(),
    }));
    let found = attacker.scan(&readable);
    assert!(
        !found.unwrapped.is_empty(),
        "the search finds and unwraps the live key: {found:?}"
    );
    for place in ["live:", "copy:", "backup:"] {
        assert!(
            found
                .opened
                .iter()
                .any(|(needle, at)| needle == &needles[0] && at.starts_with(place)),
            "the IBAN opens from {place}: {:?}",
            found.opened.iter().take(5).collect::<Vec<_>>()
        );
    }

    let response = w.app.delete(&format!("/v1/users/{user}"), &w.token).await;
    assert_eq!(response.status(), 204);

    let mut after = live(&w).await;
    after.extend(before);
    let found = attacker.scan(&after);
    assert!(
        found.is_empty(),
        "readable after the erasure: unwrapped keys at {:?}, the key in clear at {:?}, \
         plaintext {:?}, opened {:?}",
        found.unwrapped,
        found.clear_keys,
        found.plaintext.iter().take(10).collect::<Vec<_>>(),
        found.opened.iter().take(10).collect::<Vec<_>>()
    );
}
