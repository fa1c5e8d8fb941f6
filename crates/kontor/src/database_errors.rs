//! A database that cannot be reached, explained: which one (control, a region's cell or key
//! store), the configuration key that names it, where it is (host, port and database name, or
//! the SQLite file; never the user or password), and what to check for the error seen.

use std::fmt;

use crate::secret::DatabaseUrl;

/// One of the hub's databases, described for an operator.
#[derive(Debug, Clone)]
pub struct DatabaseSite {
    /// As `/readyz` names it: `control`, `cell:de`, `keys:de`.
    pub name: String,
    /// The configuration key holding its URL.
    pub key: String,
    /// `host:port/database` or the SQLite file, without credentials.
    pub location: String,
}

impl DatabaseSite {
    pub fn new(name: String, key: String, url: &DatabaseUrl) -> Self {
        Self {
            name,
            key,
            location: location(url.expose()),
        }
    }

    /// The error of a first use (migrations, a read) with what to check.
    pub fn explain(&self, err: &(dyn std::error::Error + 'static)) -> anyhow::Error {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(inner) = source {
            chain.push_str(": ");
            chain.push_str(&inner.to_string());
            source = inner.source();
        }
        anyhow::anyhow!(
            "{self}: {chain}. {}",
            hint(&chain, &self.location, &self.key)
        )
    }
}

impl fmt::Display for DatabaseSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.name.split_once(':') {
            Some(("cell", region)) => format!("the {region} cell database"),
            Some(("keys", region)) => format!("the {region} key store"),
            _ => format!("the {} database", self.name),
        };
        write!(f, "{what} ({}, {})", self.location, self.key)
    }
}

/// `host:port/database` of a PostgreSQL URL, the file of a SQLite one; nothing else of it.
fn location(raw: &str) -> String {
    if let Some(file) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    {
        return file.split('?').next().unwrap_or_default().to_owned();
    }
    match url::Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("localhost");
            let port = url.port().unwrap_or(5432);
            let database = url.path().trim_start_matches('/');
            // A socket folder given as `?host=/run/postgresql` wins over the URL's host.
            let host = url
                .query_pairs()
                .find(|(k, _)| k == "host")
                .map_or_else(|| host.to_owned(), |(_, v)| v.into_owned());
            format!("{host}:{port}/{database}")
        }
        Err(_) => "an unparseable URL".to_owned(),
    }
}

/// What to check, by what the driver said.
fn hint(chain: &str, location: &str, key: &str) -> String {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("password authentication failed") || lower.contains("no password") {
        format!("Check the user and password in {key} (the server refused them)")
    } else if lower.contains("does not exist") && lower.contains("database") {
        format!("Create the database (createdb) or correct its name in {key}")
    } else if lower.contains("pg_hba.conf") {
        "The server refuses this client: check pg_hba.conf on the server (address, user, TLS)"
            .to_owned()
    } else if lower.contains("unable to open database file") || lower.contains("readonly") {
        format!(
            "Check that the folder of {location} exists and this user may write there (data_dir)"
        )
    } else if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") {
        format!("Check the TLS settings in {key} (sslmode, sslrootcert, sslcert, sslkey)")
    } else {
        format!(
            "Check that the server at {location} is running and reachable from here (address, \
             port, firewall), and the URL in {key}; database.acquire_timeout_ms is how long a \
             connection may take"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_place_but_never_the_credentials() {
        let url = DatabaseUrl::new(
            "postgres://kontor:s3cret@pg-de.internal:6432/kontor_de?sslmode=require",
        );
        let site = DatabaseSite::new("cell:de".into(), "cells.de.url".into(), &url);
        let err = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let message = site.explain(&err).to_string();
        assert!(
            message
                .starts_with("the de cell database (pg-de.internal:6432/kontor_de, cells.de.url)"),
            "{message}"
        );
        assert!(message.contains("is running and reachable"), "{message}");
        assert!(
            !message.contains("s3cret") && !message.contains("kontor:"),
            "{message}"
        );
    }

    #[test]
    fn says_what_to_check_for_each_kind_of_failure() {
        let site = |url: &str| {
            DatabaseSite::new(
                "keys:uk".into(),
                "cells.uk.keys_url".into(),
                &DatabaseUrl::new(url),
            )
        };
        let pg = site("postgres://k:pw@db/kontor_uk_keys");
        let io = |text: &str| std::io::Error::other(text.to_owned());
        let cases = [
            (
                "password authentication failed for user \"k\"",
                "user and password in cells.uk.keys_url",
            ),
            (
                "database \"kontor_uk_keys\" does not exist",
                "Create the database",
            ),
            ("no pg_hba.conf entry for host", "pg_hba.conf"),
        ];
        for (error, expected) in cases {
            let message = pg.explain(&io(error)).to_string();
            assert!(
                message.contains("the uk key store (db:5432/kontor_uk_keys"),
                "{message}"
            );
            assert!(message.contains(expected), "{error}: {message}");
        }
        let lite = site("sqlite:///nowhere/keys/uk.db?mode=rwc");
        let message = lite
            .explain(&io("unable to open database file"))
            .to_string();
        assert!(message.contains("/nowhere/keys/uk.db exists"), "{message}");
    }
}
