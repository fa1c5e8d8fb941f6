//! Each backend's migrations, assembled from one folder per schema that both backends share
//! (`migrations/control`, `migrations/cell`, `migrations/keys`) and, where the SQL differs, a
//! backend's own files (`migrations/postgres/<schema>`, `migrations/sqlite/<schema>`) that take
//! numbers the shared folder leaves free. Both backends run the same numbers with the same
//! descriptions; the tests below fail when they diverge, and when a migration that a released
//! version applied (`migrations/released.txt`) would be recorded with another checksum.
//!
//! sqlx records a migration by version and by the SHA-384 of its file, whichever folder the file
//! is embedded from, so moving a file between folders leaves what databases recorded valid.

use std::borrow::Cow;
use std::sync::LazyLock;

use kontor_store::DatabaseRole;
use sqlx::migrate::Migrator;

use crate::dialect::Dialect;

static CONTROL: Migrator = sqlx::migrate!("./migrations/control");
static CELL: Migrator = sqlx::migrate!("./migrations/cell");
static KEYS: Migrator = sqlx::migrate!("./migrations/keys");
static POSTGRES_CELL: Migrator = sqlx::migrate!("./migrations/postgres/cell");
static SQLITE_CELL: Migrator = sqlx::migrate!("./migrations/sqlite/cell");

/// The folders a backend's migrations for one schema come from: the shared one first.
fn parts(dialect: Dialect, role: DatabaseRole) -> Vec<&'static Migrator> {
    match (dialect, role) {
        (_, DatabaseRole::Control) => vec![&CONTROL],
        (_, DatabaseRole::Keys) => vec![&KEYS],
        (Dialect::Postgres, DatabaseRole::Cell) => vec![&CELL, &POSTGRES_CELL],
        (Dialect::Sqlite, DatabaseRole::Cell) => vec![&CELL, &SQLITE_CELL],
    }
}

/// One migrator of the folders' migrations in version order.
fn assemble(dialect: Dialect, role: DatabaseRole) -> Migrator {
    let mut migrations: Vec<_> = parts(dialect, role)
        .into_iter()
        .flat_map(|part| part.migrations.iter().cloned())
        .collect();
    migrations.sort_by_key(|m| m.version);
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Every backend and schema, in the order of [`ASSEMBLED`].
const KINDS: [(Dialect, DatabaseRole); 6] = [
    (Dialect::Postgres, DatabaseRole::Control),
    (Dialect::Postgres, DatabaseRole::Cell),
    (Dialect::Postgres, DatabaseRole::Keys),
    (Dialect::Sqlite, DatabaseRole::Control),
    (Dialect::Sqlite, DatabaseRole::Cell),
    (Dialect::Sqlite, DatabaseRole::Keys),
];

static ASSEMBLED: LazyLock<[Migrator; 6]> =
    LazyLock::new(|| KINDS.map(|(dialect, role)| assemble(dialect, role)));

/// The migrations a database of this backend and schema runs, in version order.
pub(crate) fn migrator(dialect: Dialect, role: DatabaseRole) -> &'static Migrator {
    let at = KINDS
        .iter()
        .position(|kind| *kind == (dialect, role))
        .unwrap_or_default();
    &ASSEMBLED[at]
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    const DIALECTS: [Dialect; 2] = [Dialect::Postgres, Dialect::Sqlite];
    const ROLES: [DatabaseRole; 3] = [
        DatabaseRole::Control,
        DatabaseRole::Cell,
        DatabaseRole::Keys,
    ];

    fn role_name(role: DatabaseRole) -> &'static str {
        match role {
            DatabaseRole::Control => "control",
            DatabaseRole::Cell => "cell",
            DatabaseRole::Keys => "keys",
        }
    }

    /// `version description` of each migration, the description as in the file name.
    fn numbering(dialect: Dialect, role: DatabaseRole) -> Vec<(i64, String)> {
        migrator(dialect, role)
            .iter()
            .map(|m| (m.version, m.description.replace(' ', "_")))
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    #[test]
    fn both_backends_run_the_same_numbers_and_descriptions() {
        for role in ROLES {
            let postgres = numbering(Dialect::Postgres, role);
            let sqlite = numbering(Dialect::Sqlite, role);
            assert!(!postgres.is_empty(), "no {} migrations", role_name(role));
            assert_eq!(
                postgres,
                sqlite,
                "the {} migrations of PostgreSQL and SQLite diverge: every number needs a file \
                 in migrations/{0}/ or one in both migrations/postgres/{0}/ and \
                 migrations/sqlite/{0}/",
                role_name(role)
            );
        }
    }

    #[test]
    fn a_backend_file_never_shadows_a_shared_one() {
        for dialect in DIALECTS {
            for role in ROLES {
                let versions: Vec<i64> =
                    migrator(dialect, role).iter().map(|m| m.version).collect();
                let mut strictly = versions.clone();
                strictly.dedup();
                assert_eq!(
                    versions,
                    strictly,
                    "{} {}: a version stands in the shared folder and the backend's own",
                    dialect.name(),
                    role_name(role)
                );
            }
        }
    }

    /// What a released version recorded must be what this one would record: same version,
    /// description and checksum, so that a database it migrated migrates on cleanly. Every
    /// migration this version knows must be listed too (adding its line freezes the file).
    #[test]
    fn released_checksums_hold() {
        let released: Vec<Vec<&str>> = include_str!("../../migrations/released.txt")
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split_whitespace().collect())
            .collect();
        let mut missing = String::new();
        for dialect in DIALECTS {
            for role in ROLES {
                for m in migrator(dialect, role).iter() {
                    let line = format!(
                        "{} {} {} {} {}",
                        dialect.name(),
                        role_name(role),
                        m.version,
                        m.description.replace(' ', "_"),
                        hex(&m.checksum)
                    );
                    let fields: Vec<&str> = line.split(' ').collect();
                    match released.iter().find(|r| r[..3] == fields[..3]) {
                        Some(recorded) => assert_eq!(
                            recorded, &fields,
                            "a released migration changed; released databases would refuse it"
                        ),
                        None => missing.push_str(&format!("{line}\n")),
                    }
                }
            }
        }
        for recorded in &released {
            let known = DIALECTS.iter().any(|d| {
                d.name() == recorded[0]
                    && ROLES.iter().any(|r| {
                        role_name(*r) == recorded[1]
                            && migrator(*d, *r)
                                .iter()
                                .any(|m| m.version.to_string() == recorded[2])
                    })
            });
            assert!(known, "released migration {recorded:?} is gone");
        }
        assert!(
            missing.is_empty(),
            "add to migrations/released.txt once merged:\n{missing}"
        );
    }
}
