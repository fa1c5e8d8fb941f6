//! Where webhooks may go. A tenant names the URL, so the hub must not become a way into its own
//! network (SSRF): URLs are https only, and the host must resolve to public addresses — checked
//! when the URL is set and again, on the addresses actually connected to, at every attempt
//! (a DNS answer can change in between). Operators may allow http and private addresses for
//! development, tests and the demo.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::error::{ServiceError, ServiceResult};

/// The operator's allowances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    pub allow_http: bool,
    pub allow_private_addresses: bool,
}

/// How long a request setting an endpoint URL waits for its host to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest URL accepted.
const MAX_URL_LEN: usize = 2048;

/// Whether deliveries may go to `ip`: public unicast only, unless private addresses are allowed.
pub fn address_allowed(ip: IpAddr, policy: UrlPolicy) -> bool {
    policy.allow_private_addresses || is_public(ip)
}

/// A globally routable unicast address: not loopback, private, link-local, shared (CGNAT),
/// multicast, reserved, documentation or benchmarking space, nor an IPv6 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network"
        || ip.is_loopback()                    // 127/8
        || ip.is_private()                     // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()                  // 169.254/16: cloud metadata lives here
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 shared address space
        || (a == 192 && b == 0 && c == 0)      // 192.0.0/24 protocol assignments
        || ip.is_documentation()               // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19))  // 198.18/15 benchmarking
        || (a == 192 && b == 88 && c == 99)    // 192.88.99/24 6to4 relays (deprecated)
        || ip.is_multicast()                   // 224/4
        || a >= 240) // 240/4 reserved, and the broadcast address
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address that decides.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()                // fc00::/7
        || ip.is_unicast_link_local()          // fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0    // fec0::/10, deprecated site-local
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] == 0)      // Teredo: hides an IPv4 address
        || segments[..4] == [0x100, 0, 0, 0]   // 100::/64 discard-only
        || segments[..3] == [0x64, 0xff9b, 1]  // 64:ff9b:1::/48 local-use NAT64
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0] // ::ffff:0:0/96 SIIT translated IPv4
        || segments[..6] == [0; 6]) // ::/96, IPv4-compatible (deprecated)
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid("invalid_webhook_url", message)
}

fn not_allowed(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid("webhook_url_not_allowed", message)
}

/// Checks what can be checked without the network: an absolute `https` URL (or `http` when
/// allowed), with a host, without credentials or a fragment; an IP address as host must be one
/// deliveries may go to.
pub fn check_syntax(raw: &str, policy: UrlPolicy) -> ServiceResult<Url> {
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
    Ok(url)
}

fn check_ip(ip: IpAddr, policy: UrlPolicy) -> ServiceResult<()> {
    if address_allowed(ip, policy) {
        Ok(())
    } else {
        Err(not_allowed(format!(
            "url points to {ip}, a private, loopback, link-local or reserved address"
        )))
    }
}

/// Resolves the URL's host and checks every address it resolves to.
pub async fn check_resolved(url: &Url, policy: UrlPolicy) -> ServiceResult<()> {
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
                "the host {domain} resolves to {}, a private, loopback, link-local or reserved address",
                address.ip()
            )));
        }
    }
    Ok(())
}

/// The resolver deliveries use: the system's, with every address deliveries may not go to
/// removed. A host left with none fails with [`AddressRefused`], which the sender reports as
/// `address_not_allowed`.
#[derive(Debug, Clone, Copy)]
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
        let policy = self.policy;
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
                .filter(|a| address_allowed(a.ip(), policy))
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

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
            "::127.0.0.1",
            "192.88.99.1",
            "64:ff9b:1::a00:1",
            "::ffff:0:a9fe:a9fe",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public(ip), "{private} must be refused");
            assert!(address_allowed(
                ip,
                UrlPolicy {
                    allow_private_addresses: true,
                    ..strict()
                }
            ));
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} is public");
        }
    }

    #[test]
    fn syntax_rules() {
        assert!(check_syntax("https://hooks.example/kontor?x=1", strict()).is_ok());
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
            match check_syntax(bad, strict()) {
                Err(ServiceError::Invalid { code: got, .. }) => assert_eq!(got, code, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let open = UrlPolicy {
            allow_http: true,
            allow_private_addresses: true,
        };
        assert!(check_syntax("http://127.0.0.1:9000/hook", open).is_ok());
        let long = format!("https://hooks.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_syntax(&long, strict()).is_err());
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let url = Url::parse("https://localhost:8443/hook").unwrap();
        assert!(matches!(
            check_resolved(&url, strict()).await,
            Err(ServiceError::Invalid {
                code: "webhook_url_not_allowed",
                ..
            })
        ));
        let open = UrlPolicy {
            allow_http: true,
            allow_private_addresses: true,
        };
        assert!(check_resolved(&url, open).await.is_ok());
        let nowhere = Url::parse("https://no-such-host.invalid/").unwrap();
        assert!(matches!(
            check_resolved(&nowhere, strict()).await,
            Err(ServiceError::Invalid {
                code: "invalid_webhook_url",
                ..
            })
        ));
    }
}
