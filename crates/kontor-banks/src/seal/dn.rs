//! Distinguished names as text: RFC 4514 (the Berlin Group `keyId`'s issuer), and the UK
//! directory's organisation and software statement ids read from a certificate's subject.

use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Short names for the attribute types a certificate's names use: RFC 4514's own, and the
/// names X.520 gives `serialNumber` and `organizationIdentifier` (which eIDAS certificates carry).
const NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.97", "organizationIdentifier"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

/// RFC 4514: the RDNs last to first, joined by `,`; the attributes of one RDN by `+`.
pub(super) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type().to_id_string();
    let known = NAMES.iter().find(|(id, _)| *id == oid).map(|(_, n)| *n);
    match (known, attribute.as_str()) {
        (Some(name), Ok(value)) => format!("{name}={}", escape(value)),
        // RFC 4514 §2.4: a type without a name, or a value that is not a string, as the
        // dotted OID and the hex of the value's BER encoding.
        (name, _) => {
            let value = attribute.attr_value();
            let mut der = vec![u8::try_from(value.tag().0).unwrap_or(0x04)];
            let content = value.data;
            match u8::try_from(content.len()) {
                Ok(len) if len < 0x80 => der.push(len),
                _ => {
                    let len = content.len().to_be_bytes();
                    let first = len.iter().position(|b| *b != 0).unwrap_or(len.len() - 1);
                    der.push(0x80 | u8::try_from(len.len() - first).unwrap_or(0));
                    der.extend_from_slice(&len[first..]);
                }
            }
            der.extend_from_slice(content);
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", name.unwrap_or(&oid))
        }
    }
}

/// RFC 4514 §2.4: `"+,;<>\` always, `#` and a space at the start, a space at the end.
fn escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a quoted HTTP header parameter cannot carry (non-ASCII, control characters, `"`) is
/// percent-encoded, as the Berlin Group's own `keyId` examples encode the issuer; `%` too, so
/// that the encoding stays reversible. Plain ASCII names are left as they are.
pub(super) fn header_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `{OU}/{CN}` of the subject: the UK directory issues OBSeal certificates with the
/// organisation id as `OU` and the software statement id as `CN`.
pub(super) fn directory_issuer(subject: &X509Name<'_>) -> Option<String> {
    let first = |mut it: Box<dyn Iterator<Item = &AttributeTypeAndValue<'_>> + '_>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let org = first(Box::new(subject.iter_organizational_unit()))?;
    let software = first(Box::new(subject.iter_common_name()))?;
    Some(format!("{org}/{software}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_rfc_4514_says() {
        assert_eq!(escape("Kontor, Inc."), r"Kontor\, Inc.");
        assert_eq!(escape("#1 "), r"\#1\ ");
        assert_eq!(escape(r#"a"b+c;d<e>f\g"#), r#"a\"b\+c\;d\<e\>f\\g"#);
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn only_what_a_header_cannot_carry_is_encoded() {
        assert_eq!(header_safe("CN=Kontor CA,C=DE"), "CN=Kontor CA,C=DE");
        assert_eq!(header_safe("O=Banque Lumière"), "O=Banque Lumi%C3%A8re");
        assert_eq!(header_safe("a\"b%c"), "a%22b%25c");
    }
}
