//! The configuration's safety rules, and the one switch that relaxes them for development.
//!
//! Outside development the hub refuses, at startup, plain http where it would carry tokens or
//! personal data across a network: its public URL (users' browsers and the banks' redirects come
//! to it) and the banks' base URLs. Loopback URLs stay allowed, since that traffic never leaves
//! the machine (`kontor serve` on a fresh machine listens on 127.0.0.1). `development = true`
//! (`KONTOR_DEVELOPMENT`) allows http anywhere; `kontor demo` sets it.
//!
//! Keys are generated only where one node owns all the data: every database SQLite. A deployment
//! with a PostgreSQL database may run several nodes, which must share their keys.

use std::net::IpAddr;

use anyhow::{Context, bail};
use ipnet::IpNet;
use url::{Host, Url};

use super::{Config, ServerConfig};

pub(super) fn validate(config: &Config) -> anyhow::Result<()> {
    let proxies = trusted_proxies(&config.server)?;
    if config.server.trust_forwarded_for && proxies.is_empty() {
        bail!(
            "server.trust_forwarded_for needs server.trusted_proxies: the addresses (or CIDR \
             ranges) of the proxies in front of the hub, whose X-Forwarded-For entries are believed"
        );
    }
    client_certificate_header(&config.server)?;
    if config.development {
        return Ok(());
    }
    let public = config.public_url()?;
    if public.scheme() != "https" && !is_loopback(&public) {
        let source = if config.server.public_url.is_some() {
            "is"
        } else {
            "is not set and defaults to"
        };
        bail!(
            "server.public_url {source} {public}: users' browsers and the banks reach the hub \
             there, so it must be https (terminate TLS in front of the hub and set its https URL); \
             development = true (KONTOR_DEVELOPMENT) allows http for development"
        );
    }
    for (i, bank) in config.banks.iter().enumerate() {
        let url = Url::parse(&bank.base_url).with_context(|| format!("banks[{i}].base_url"))?;
        if url.scheme() != "https" && !is_loopback(&url) {
            bail!(
                "banks[{i}].base_url ({}) is {url}: bank calls carry tokens and account data, so \
                 it must be https; development = true (KONTOR_DEVELOPMENT) allows http for \
                 development",
                bank.id
            );
        }
    }
    Ok(())
}

/// The header a trusted proxy forwards client certificates in, checked: a valid header name, and
/// proxies to trust it from.
pub fn client_certificate_header(
    server: &ServerConfig,
) -> anyhow::Result<Option<axum::http::HeaderName>> {
    let Some(raw) = &server.client_certificate_header else {
        return Ok(None);
    };
    let name = axum::http::HeaderName::from_bytes(raw.trim().as_bytes()).map_err(|_| {
        anyhow::anyhow!("server.client_certificate_header: {raw:?} is not a header name")
    })?;
    if trusted_proxies(server)?.is_empty() {
        bail!(
            "server.client_certificate_header needs server.trusted_proxies: the addresses (or \
             CIDR ranges) of the proxies that verify client certificates and forward them; the \
             header is believed only from them"
        );
    }
    Ok(Some(name))
}

/// The trusted proxies as ranges; a bare address is a range of one.
pub fn trusted_proxies(server: &ServerConfig) -> anyhow::Result<Vec<IpNet>> {
    server
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let raw = raw.trim();
            raw.parse::<IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                .ok()
                .with_context(|| {
                    format!(
                        "server.trusted_proxies[{i}]: {raw:?} is not an address or a CIDR range \
                         such as 10.0.0.0/8"
                    )
                })
        })
        .collect()
}

/// A URL whose traffic stays on this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Every database is SQLite: one node owns all the data, and may generate its own keys.
pub fn single_node(config: &Config) -> bool {
    config.databases().is_ok_and(|dbs| {
        std::iter::once(&dbs.control)
            .chain(dbs.cells.values())
            .chain(dbs.keys.values())
            .all(|url| url.expose().starts_with("sqlite:"))
    })
}

/// Refuses to go on without configured keys where they may not be generated, naming them all.
pub fn require_shared_keys(config: &Config) -> anyhow::Result<()> {
    if single_node(config) {
        return Ok(());
    }
    let mut missing = Vec::new();
    if config.auth.signing_keys.is_empty() {
        missing.push("auth.signing_keys");
    }
    if config.secrets.keys.is_empty() {
        missing.push("secrets.keys");
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "{} must be configured: with a PostgreSQL database several nodes share the data, and \
         keys generated into one node's data_dir would differ from the others'. Give every node \
         the same keys, each an id and the base64 of 32 random bytes (openssl rand -base64 32)",
        missing.join(" and ")
    )
}

/// Where a generated key-encryption key is kept: inside the data directory, beside the data it
/// protects.
pub fn generated_kek_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("secrets").join("data-encryption.key")
}

/// Refuses to generate a key-encryption key inside the data directory outside development
/// (`kontor demo` sets it): every copy or backup of the data directory would carry the key
/// beside the data sealed under it. A key generated by an earlier release is still used, with a
/// warning, so an existing installation keeps opening its data.
pub fn require_kek_outside_data_dir(config: &Config) -> anyhow::Result<()> {
    if !config.secrets.keys.is_empty() || config.development {
        return Ok(());
    }
    let path = generated_kek_path(config);
    if path.exists() {
        tracing::warn!(
            path = %path.display(),
            "the key-encryption key lies inside the data directory, so every copy of it holds              the key beside the data: configure secrets.keys from outside data_dir (with this              key first, so existing data still opens)"
        );
        return Ok(());
    }
    bail!(
        "secrets.keys is not configured, and a key-encryption key generated into {} would lie inside the data directory, beside the data it protects, in every copy and backup of it. Configure secrets.keys from outside data_dir (a secret store, or the environment): each an id and the base64 of 32 random bytes (openssl rand -base64 32), e.g. KONTOR_SECRETS__KEYS='[{{id=\"k1\",secret=\"…\"}}]'. To try Kontor out, `kontor demo` (or development = true) generates one there",
        path.display()
    )
}

/// `kontor serve` and `kontor worker` need a public URL that browsers and banks can open: with
/// none configured it is made from `server.listen`, and an unspecified address there
/// (`0.0.0.0`, `::`) would put `http://0.0.0.0:8080/connect/…` into every connect link and bank
/// redirect, in development too. `kontor demo` chooses its own.
pub fn require_reachable_public_url(config: &Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    if config.server.public_url.is_none() && listen.ip().is_unspecified() {
        bail!(
            "server.public_url is not set and server.listen is {listen}, an address that means              \"every interface\": connect links and bank redirects would point at {}, which no              browser or bank can open. Set server.public_url (KONTOR_SERVER__PUBLIC_URL) to the              address users and banks reach this hub at, e.g. https://bank-link.example/",
            config.public_url()?
        );
    }
    Ok(())
}

/// Says, once at startup, what development mode lets through.
pub fn warn_if_development(config: &Config) {
    if config.development {
        tracing::warn!(
            "development mode (development = true): http accepted for server.public_url and \
             banks' base_url; never use it in production"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_this_machine_only() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://[::1]:8080/",
            "http://localhost:8090/bank",
            "http://LOCALHOST/",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://0.0.0.0:8080/",
            "http://10.0.0.1/",
            "http://localhost.example/",
            "http://hub.example/",
            "http://[::]/",
        ] {
            assert!(!is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn a_forwarded_client_certificate_needs_proxies_and_a_header_name() {
        let server = |header: Option<&str>, proxies: &[&str]| ServerConfig {
            client_certificate_header: header.map(str::to_owned),
            trusted_proxies: proxies.iter().map(|p| (*p).to_owned()).collect(),
            ..ServerConfig::default()
        };
        assert_eq!(client_certificate_header(&server(None, &[])).unwrap(), None);
        for (header, proxies, expected) in [
            ("Client-Cert", &[][..], "needs server.trusted_proxies"),
            ("client cert", &["10.0.0.0/8"][..], "is not a header name"),
        ] {
            let err = client_certificate_header(&server(Some(header), proxies))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        let good = server(Some("Client-Cert"), &["10.0.0.0/8"]);
        let name = client_certificate_header(&good).unwrap().unwrap();
        assert_eq!(name.as_str(), "client-cert");
    }

    #[test]
    fn trusted_proxies_are_ranges_or_addresses() {
        let server = ServerConfig {
            trusted_proxies: vec![
                "10.0.0.0/8".to_owned(),
                " 192.0.2.7 ".to_owned(),
                "fd00::/8".to_owned(),
            ],
            ..ServerConfig::default()
        };
        let nets = trusted_proxies(&server).unwrap();
        assert_eq!(nets[1], "192.0.2.7/32".parse::<IpNet>().unwrap());
        let bad = ServerConfig {
            trusted_proxies: vec!["10.0.0.0/8".to_owned(), "proxy.internal".to_owned()],
            ..ServerConfig::default()
        };
        let err = trusted_proxies(&bad).unwrap_err().to_string();
        assert!(err.contains("server.trusted_proxies[1]"), "{err}");
    }
}
