//! Distinguished names as text, and comparing them the way LDAP's `distinguishedNameMatch`
//! does (attribute types by OID, values without regard to case or extra spaces), for the
//! Berlin Group `keyId` (`CA=<issuer>`) and the UK `tls_client_auth_subject_dn` (RFC 8705).
//! Attribute order is not significant here: writers disagree on it (RFC 4514 puts the most
//! specific RDN first, most X.509 tools print the certificate's order).

use x509_parser::x509::X509Name;

/// Short names the sandbox writes and reads, with their OIDs.
const NAMES: [(&str, &str); 11] = [
    ("CN", "2.5.4.3"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("STREET", "2.5.4.9"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("organizationIdentifier", "2.5.4.97"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
];

/// A distinguished name as (attribute OID, value) pairs in certificate order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn(pub Vec<(String, String)>);

fn short_name(oid: &str) -> Option<&'static str> {
    NAMES.iter().find(|(_, o)| *o == oid).map(|(n, _)| *n)
}

fn oid_of(attribute_type: &str) -> Option<String> {
    let t = attribute_type.trim();
    if let Some((_, oid)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
        return Some((*oid).to_string());
    }
    // `OID.2.5.4.97` (Java) and plain dotted OIDs.
    let dotted = t
        .strip_prefix("OID.")
        .or_else(|| t.strip_prefix("oid."))
        .unwrap_or(t);
    (!dotted.is_empty() && dotted.split('.').all(|p| p.parse::<u64>().is_ok()))
        .then(|| dotted.to_string())
}

impl Dn {
    /// From a parsed certificate name; `None` if a value is not a readable string.
    pub fn from_x509(name: &X509Name<'_>) -> Option<Self> {
        let mut pairs = Vec::new();
        for attribute in name.iter_attributes() {
            let value = match attribute.as_str() {
                Ok(text) => text.to_string(),
                // BMPString and the like: not used by any certificate the sandbox issues.
                Err(_) => String::from_utf8(attribute.as_slice().to_vec()).ok()?,
            };
            pairs.push((attribute.attr_type().to_id_string(), value));
        }
        Some(Self(pairs))
    }

    /// RFC 4514 text: most specific attribute first (`CN=…,O=…,C=…`), special characters
    /// escaped.
    pub fn to_rfc4514(&self) -> String {
        self.0
            .iter()
            .rev()
            .map(|(oid, value)| {
                let name = short_name(oid).map_or_else(|| oid.clone(), str::to_string);
                format!("{name}={}", escape(value))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses `CN=x,O=y,…` (also `+`-joined multi-valued RDNs, `\,` escapes and quoted values).
    pub fn parse(text: &str) -> Option<Self> {
        let mut pairs = Vec::new();
        for part in split_unescaped(text, &[',', ';', '+'])? {
            if part.trim().is_empty() {
                return None;
            }
            let (attribute_type, value) = part.split_once('=')?;
            pairs.push((oid_of(attribute_type)?, unescape(value.trim())?));
        }
        // Text lists the most specific attribute first; certificates the other way round.
        pairs.reverse();
        (!pairs.is_empty()).then_some(Self(pairs))
    }

    /// `distinguishedNameMatch` without regard to attribute order.
    pub fn matches(&self, other: &Dn) -> bool {
        let normal = |dn: &Dn| {
            let mut pairs: Vec<(String, String)> =
                dn.0.iter()
                    .map(|(oid, value)| {
                        let folded = value.split_whitespace().collect::<Vec<_>>().join(" ");
                        (oid.clone(), folded.to_lowercase())
                    })
                    .collect();
            pairs.sort();
            pairs
        };
        normal(self) == normal(other)
    }

    /// The first value of an attribute.
    pub fn get(&self, oid: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(o, _)| o == oid)
            .map(|(_, v)| v.as_str())
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || edge_space
            || (i == 0 && c == '#')
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at separators that are neither escaped nor inside quotes.
fn split_unescaped(text: &str, separators: &[char]) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                current.push(chars.next()?);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if !quoted && separators.contains(&c) => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return None;
    }
    parts.push(current);
    Some(parts)
}

fn unescape(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return unescape(inner);
    }
    let mut bytes = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        let next = chars.next()?;
        match chars.peek().copied() {
            Some(second) if next.is_ascii_hexdigit() && second.is_ascii_hexdigit() => {
                chars.next();
                let pair: String = [next, second].iter().collect();
                bytes.push(u8::from_str_radix(&pair, 16).ok()?);
            }
            _ => {
                let mut buffer = [0u8; 4];
                bytes.extend_from_slice(next.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_render_and_match() {
        let dn = Dn::parse("CN=Kontor Sandbox TPP CA, O=Kontor\\, Test,C=DE").unwrap();
        assert_eq!(dn.get("2.5.4.10"), Some("Kontor, Test"));
        assert_eq!(
            dn.to_rfc4514(),
            "CN=Kontor Sandbox TPP CA,O=Kontor\\, Test,C=DE"
        );
        assert_eq!(dn.0.first().map(|(oid, _)| oid.as_str()), Some("2.5.4.6"));
        let reordered = Dn::parse("c=de,o=\"KONTOR, TEST\",cn=kontor  sandbox TPP CA").unwrap();
        assert!(dn.matches(&reordered));
        let other = Dn::parse("CN=Kontor Sandbox TPP CA,O=Kontor,C=DE").unwrap();
        assert!(!dn.matches(&other));
        let org = Dn::parse("organizationIdentifier=PSDDE-BAFIN-123456,2.5.4.3=x").unwrap();
        assert_eq!(org.get("2.5.4.97"), Some("PSDDE-BAFIN-123456"));
        assert_eq!(Dn::parse("CN=a,bogus"), None);
        assert_eq!(Dn::parse("CN=\"open"), None);
        assert_eq!(Dn::parse("XX=1"), None);
        assert_eq!(
            Dn::parse("CN=caf\\C3\\A9").unwrap().get("2.5.4.3"),
            Some("café")
        );
    }
}
