//! Which addresses and ports are which: public unicast addresses, the cloud metadata services,
//! and the ports of services that sit inside networks. The policy built on them is `address`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Well-known ports of services that sit inside networks and speak to anyone who connects:
/// databases, caches, queues, container engines and cluster control planes.
pub const DEFAULT_DENIED_PORTS: &[u16] = &[
    1080,  // SOCKS proxies
    1433,  // Microsoft SQL Server
    1521,  // Oracle
    2049,  // NFS
    2375,  // Docker engine API
    2376,  // Docker engine API (TLS)
    2379,  // etcd clients
    2380,  // etcd peers
    3306,  // MySQL, MariaDB
    3389,  // RDP
    4369,  // Erlang port mapper (RabbitMQ, CouchDB)
    5432,  // PostgreSQL
    5672,  // AMQP
    5984,  // CouchDB
    6379,  // Redis
    6443,  // Kubernetes API server
    8500,  // Consul
    9042,  // Cassandra
    9092,  // Kafka
    9200,  // Elasticsearch HTTP
    9300,  // Elasticsearch transport
    10250, // kubelet
    10255, // kubelet (read-only)
    11211, // memcached
    27017, // MongoDB
];

/// The cloud providers' instance metadata services, which hand out the machine's credentials
/// to whoever asks from inside: refused even where private addresses are allowed.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS pod identity
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure WireServer
];
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), // AWS (IPv6 endpoint)
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),  // AWS EKS pod identity (IPv6)
];
/// A cloud metadata address, written as itself or inside an IPv6 address that reaches it.
pub fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => METADATA_V4.contains(&v4),
        IpAddr::V6(v6) => {
            METADATA_V6.contains(&v6) || embedded_v4(v6).is_some_and(|v4| METADATA_V4.contains(&v4))
        }
    }
}

fn v4_of(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// The IPv4 address an IPv6 address stands for: mapped, IPv4-compatible, SIIT, NAT64 or 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0, 0, 0, 0, 0xffff, 0] || s[..6] == [0; 6]
    {
        return Some(v4_of(s[6], s[7]));
    }
    (s[0] == 0x2002).then(|| v4_of(s[1], s[2]))
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
        return is_public_v4(v4_of(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(v4_of(segments[1], segments[2]));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
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
            "64:ff9b::a9fe:101",
            "2002:7f00:1::",
            "2001:db8::1",
            "::127.0.0.1",
            "192.88.99.1",
            "64:ff9b:1::a00:1",
            "::ffff:0:a9fe:101",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public(ip), "{private} must be refused");
            assert!(!is_metadata(ip), "{private} is private, not metadata");
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
}
