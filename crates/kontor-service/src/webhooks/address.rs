//! Where webhooks may go. A tenant names the URL, so the hub must not become a way into its own
//! network (SSRF): URLs are https only, the host must resolve to public addresses, and the port
//! must be a web port (80, 443, or 1024-65535 less the operator's deny list of database, cache
//! and cluster ports) — checked when the URL is set and again, on the addresses actually
//! connected to, at every attempt (a DNS answer can change in between). Operators may allow http
//! and private addresses for development, tests and the demo; the cloud metadata addresses stay
//! refused even then, since they hand out the machine's credentials.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

pub use super::ranges::{DEFAULT_DENIED_PORTS, is_metadata, is_public};
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};

/// The operator's allowances and refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_http: bool,
    pub allow_private_addresses: bool,
    /// Ports of 1024 and above deliveries may not go to.
    pub denied_ports: Arc<[u16]>,
}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_addresses: false,
            denied_ports: Arc::from(DEFAULT_DENIED_PORTS),
        }
    }
}

/// How long a request setting an endpoint URL waits for its host to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest URL accepted.
const MAX_URL_LEN: usize = 2048;

/// Whether deliveries may go to `ip`: public unicast only, unless private addresses are allowed;
/// never a metadata service.
pub fn address_allowed(ip: IpAddr, policy: &UrlPolicy) -> bool {
    !is_metadata(ip) && (policy.allow_private_addresses || is_public(ip))
}

/// Whether deliveries may go to `port`: 80, 443, or 1024 and above unless denied. Port 0 never.
pub fn port_allowed(port: u16, policy: &UrlPolicy) -> bool {
    (port == 80 || port == 443 || port >= 1024) && !policy.denied_ports.contains(&port)
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(ErrorCode::InvalidWebhookUrl, message)
}

fn not_allowed(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(ErrorCode::WebhookUrlNotAllowed, message)
}

/// Checks what can be checked without the network: an absolute `https` URL (or `http` when
/// allowed), with a host, without credentials or a fragment, on an allowed port; an IP address as
/// host must be one deliveries may go to.
pub fn check_syntax(raw: &str, policy: &UrlPolicy) -> ServiceResult<Url> {
    if raw.len() > MAX_URL_LEN {
        return Err(invalid(format!(
            "url must be at most {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(raw).map_err(|e| invalid(format!("url is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => return Err(invalid("url must use https")),
        _ => return Err(invalid("url must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "url must not contain credentials; receivers authenticate deliveries by their signature",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("url must not have a fragment"));
    }
    match url.host() {
        None => return Err(invalid("url must have a host")),
        Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy)?,
        Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy)?,
        Some(Host::Domain(_)) => {}
    }
    check_port(&url, policy)?;
    Ok(url)
}

/// The URL's port (its scheme's default when it names none) must be one deliveries may go to.
pub fn check_port(url: &Url, policy: &UrlPolicy) -> ServiceResult<()> {
    let port = url.port_or_known_default().unwrap_or(0);
    if port_allowed(port, policy) {
        Ok(())
    } else {
        Err(not_allowed(format!(
            "url port {port} is not allowed: webhooks go to port 80, 443 or 1024-65535, \
             except database, cache and cluster ports"
        )))
    }
}

fn check_ip(ip: IpAddr, policy: &UrlPolicy) -> ServiceResult<()> {
    if is_metadata(ip) {
        Err(not_allowed(format!(
            "url points to {ip}, a cloud metadata address"
        )))
    } else if address_allowed(ip, policy) {
        Ok(())
    } else {
        Err(not_allowed(format!(
            "url points to {ip}, a private, loopback, link-local or reserved address"
        )))
    }
}

/// Resolves the URL's host and checks every address it resolves to.
pub async fn check_resolved(url: &Url, policy: &UrlPolicy) -> ServiceResult<()> {
    let Some(Host::Domain(domain)) = url.host() else {
        return Ok(()); // an IP address, checked with the syntax
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((domain, port)))
            .await
            .map_err(|_| invalid(format!("the host {domain} did not resolve in time")))?
            .map_err(|_| invalid(format!("the host {domain} does not resolve")))?
            .collect();
    if addresses.is_empty() {
        return Err(invalid(format!("the host {domain} does not resolve")));
    }
    for address in addresses {
        if !address_allowed(address.ip(), policy) {
            return Err(not_allowed(format!(
                "the host {domain} resolves to {}, a private, loopback, link-local, reserved or metadata address",
                address.ip()
            )));
        }
    }
    Ok(())
}

/// The resolver deliveries use: the system's, with every address deliveries may not go to
/// removed. A host left with none fails with [`AddressRefused`], which the sender reports as
/// `address_not_allowed`.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    pub policy: UrlPolicy,
}

/// The host resolved only to addresses deliveries may not go to.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to addresses webhooks may not be delivered to")]
pub(crate) struct AddressRefused;

/// The host did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("the host does not resolve")]
pub(crate) struct Unresolvable;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Box::new(Unresolvable) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            if resolved.is_empty() {
                return Err(Box::new(Unresolvable) as Box<dyn std::error::Error + Send + Sync>);
            }
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| address_allowed(a.ip(), &policy))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> UrlPolicy {
        UrlPolicy::default()
    }

    fn private_allowed() -> UrlPolicy {
        UrlPolicy {
            allow_private_addresses: true,
            ..strict()
        }
    }

    fn open() -> UrlPolicy {
        UrlPolicy {
            allow_http: true,
            allow_private_addresses: true,
            ..strict()
        }
    }

    fn code_of(result: ServiceResult<Url>) -> &'static str {
        match result {
            Err(ServiceError::Invalid { code, .. }) => code.as_str(),
            Ok(url) => panic!("{url} accepted"),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn metadata_addresses_are_refused_even_where_private_ones_are_allowed() {
        for metadata in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "168.63.129.16",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:0:a9fe:a9fe",
            "::a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::",
        ] {
            let ip: IpAddr = metadata.parse().unwrap();
            assert!(is_metadata(ip), "{metadata}");
            assert!(!address_allowed(ip, &open()), "{metadata}");
            assert!(!address_allowed(ip, &strict()), "{metadata}");
        }
        for (url, policy) in [
            ("https://169.254.169.254/latest/meta-data", open()),
            ("http://169.254.169.254/latest/meta-data", open()),
            ("http://[fd00:ec2::254]/latest/meta-data", open()),
            ("http://[::ffff:169.254.169.254]/", open()),
            ("https://[fd00:ec2::254]/", strict()),
        ] {
            assert_eq!(
                code_of(check_syntax(url, &policy)),
                "webhook_url_not_allowed",
                "{url}"
            );
        }
        // Its neighbours are only private.
        assert!(address_allowed("169.254.169.253".parse().unwrap(), &open()));
        assert!(address_allowed("fd00:ec2::253".parse().unwrap(), &open()));
    }

    #[test]
    fn only_web_ports_and_unprivileged_ones_outside_the_deny_list_are_allowed() {
        for port in [80, 443, 1024, 8080, 8443, 9000, 65535] {
            assert!(port_allowed(port, &strict()), "{port}");
            let url = format!("https://hooks.example:{port}/hook");
            assert!(check_syntax(&url, &strict()).is_ok(), "{url}");
        }
        for port in [
            0, 1, 22, 25, 53, 79, 81, 442, 444, 1023, 6379, 5432, 2375, 11211,
        ] {
            assert!(!port_allowed(port, &strict()), "{port}");
            let url = format!("https://hooks.example:{port}/hook");
            assert_eq!(
                code_of(check_syntax(&url, &strict())),
                "webhook_url_not_allowed",
                "{url}"
            );
        }
        // The defaults of the schemes are 80 and 443.
        assert!(check_syntax("https://hooks.example/", &strict()).is_ok());
        assert!(check_syntax("http://hooks.example/", &open()).is_ok());
        // Private addresses allowed (the demo) do not open other ports.
        assert_eq!(
            code_of(check_syntax("http://127.0.0.1:6379/", &open())),
            "webhook_url_not_allowed"
        );
        // The deny list is the operator's.
        let custom = UrlPolicy {
            denied_ports: Arc::from(&[8081_u16][..]),
            ..strict()
        };
        assert!(!port_allowed(8081, &custom));
        assert!(port_allowed(6379, &custom));
        assert!(!port_allowed(0, &custom) && !port_allowed(22, &custom));
    }

    #[test]
    fn private_addresses_only_where_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.1.1",
            "::1",
            "fd12:3456::1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!address_allowed(ip, &strict()), "{private}");
            assert!(address_allowed(ip, &private_allowed()), "{private}");
        }
    }

    #[test]
    fn syntax_rules() {
        assert!(check_syntax("https://hooks.example/kontor?x=1", &strict()).is_ok());
        for (bad, code) in [
            ("not a url", "invalid_webhook_url"),
            ("http://hooks.example/", "invalid_webhook_url"),
            ("ftp://hooks.example/", "invalid_webhook_url"),
            ("https://user:pw@hooks.example/", "invalid_webhook_url"),
            ("https://hooks.example/#frag", "invalid_webhook_url"),
            ("https://127.0.0.1/", "webhook_url_not_allowed"),
            ("https://[::1]:8443/", "webhook_url_not_allowed"),
            (
                "https://169.254.169.254/latest/meta-data",
                "webhook_url_not_allowed",
            ),
            ("https://0x7f000001/", "webhook_url_not_allowed"),
        ] {
            assert_eq!(code_of(check_syntax(bad, &strict())), code, "{bad}");
        }
        assert!(check_syntax("http://127.0.0.1:9000/hook", &open()).is_ok());
        let long = format!("https://hooks.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_syntax(&long, &strict()).is_err());
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let url = Url::parse("https://localhost:8443/hook").unwrap();
        assert!(matches!(
            check_resolved(&url, &strict()).await,
            Err(ServiceError::Invalid {
                code: ErrorCode::WebhookUrlNotAllowed,
                ..
            })
        ));
        assert!(check_resolved(&url, &open()).await.is_ok());
        let nowhere = Url::parse("https://no-such-host.invalid/").unwrap();
        assert!(matches!(
            check_resolved(&nowhere, &strict()).await,
            Err(ServiceError::Invalid {
                code: ErrorCode::InvalidWebhookUrl,
                ..
            })
        ));
    }
}
