//! Whose address a request comes from. Behind an ingress the connection's peer is the proxy,
//! and the client is in `X-Forwarded-For`; but every proxy *appends* to that header, so all
//! entries left of the ones our own proxies wrote are whatever the client sent. The client is
//! therefore the rightmost entry that is not one of our trusted proxies — and the header counts
//! only when the peer itself is one of them.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::state::ApiSettings;

impl ApiSettings {
    pub(crate) fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, or, when `X-Forwarded-For` is trusted and the peer is
    /// a trusted proxy, the rightmost entry that is not a trusted proxy. When every entry is
    /// trusted, the leftmost; an entry that is not an address ends the walk at the last one that
    /// was.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        if !self.trust_forwarded_for || !self.is_trusted_proxy(peer) {
            return Some(peer);
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                break;
            };
            client = ip;
            if !self.is_trusted_proxy(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, with a port or in brackets as some proxies write it.
fn parse_entry(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    let ip = raw
        .parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> ApiSettings {
        ApiSettings {
            trust_forwarded_for: true,
            trusted_proxies: nets.iter().map(|n| n.parse().unwrap()).collect(),
            ..ApiSettings::default()
        }
    }

    fn client(policy: &ApiSettings, peer: &str, forwarded: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        let peer: SocketAddr = peer.parse().unwrap();
        policy
            .client_ip(&headers, Some(peer))
            .map(|ip| ip.to_string())
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let ingress = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client wrote the first entry itself; the ingress appended the real address.
        let got = client(&ingress, "10.0.0.2:443", &["6.6.6.6, 203.0.113.9"]);
        assert_eq!(got.as_deref(), Some("203.0.113.9"));
        // Two proxies of ours: both stepped over.
        let got = client(
            &ingress,
            "10.0.0.2:443",
            &["6.6.6.6, 203.0.113.9, 10.1.2.3"],
        );
        assert_eq!(got.as_deref(), Some("203.0.113.9"));
        // Several header lines are one list, in order.
        let got = client(
            &ingress,
            "127.0.0.1:1",
            &["6.6.6.6", "198.51.100.4", "10.9.9.9"],
        );
        assert_eq!(got.as_deref(), Some("198.51.100.4"));
        // Ports and brackets as some proxies write them.
        let got = client(&ingress, "10.0.0.2:443", &["203.0.113.9:5555"]);
        assert_eq!(got.as_deref(), Some("203.0.113.9"));
        let got = client(&ingress, "10.0.0.2:443", &["[2001:db8::7]:5555"]);
        assert_eq!(got.as_deref(), Some("2001:db8::7"));
        let got = client(&ingress, "10.0.0.2:443", &["[2001:db8::8]"]);
        assert_eq!(got.as_deref(), Some("2001:db8::8"));
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let ingress = proxies(&["10.0.0.0/8"]);
        let got = client(&ingress, "203.0.113.50:40000", &["6.6.6.6"]);
        assert_eq!(got.as_deref(), Some("203.0.113.50"));
        let off = ApiSettings {
            trust_forwarded_for: false,
            ..ingress.clone()
        };
        let got = client(&off, "10.0.0.2:443", &["203.0.113.9"]);
        assert_eq!(got.as_deref(), Some("10.0.0.2"));
        // An IPv4 peer seen on a dual-stack socket is still the proxy.
        let got = client(&ingress, "[::ffff:10.0.0.2]:443", &["203.0.113.9"]);
        assert_eq!(got.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn odd_headers_never_name_an_address_the_client_chose_over_ours() {
        let ingress = proxies(&["10.0.0.0/8"]);
        // No header, or an empty one: the proxy itself.
        assert_eq!(
            client(&ingress, "10.0.0.2:443", &[]).as_deref(),
            Some("10.0.0.2")
        );
        // Garbage right of a real entry ends the walk at the last trusted hop.
        let got = client(&ingress, "10.0.0.2:443", &["203.0.113.9, nonsense"]);
        assert_eq!(got.as_deref(), Some("10.0.0.2"));
        let got = client(&ingress, "10.0.0.2:443", &["6.6.6.6, nonsense, 10.0.0.3"]);
        assert_eq!(got.as_deref(), Some("10.0.0.3"));
        // Every entry one of ours: the farthest.
        let got = client(&ingress, "10.0.0.2:443", &["10.0.0.5, 10.0.0.4"]);
        assert_eq!(got.as_deref(), Some("10.0.0.5"));
        // No peer known: nothing to say.
        assert_eq!(ingress.client_ip(&HeaderMap::new(), None), None);
    }
}
