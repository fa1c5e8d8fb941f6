//! Just enough DER (ITU-T X.690) to read the ETSI QC statements x509-parser leaves opaque and to
//! write the few structures rcgen has no builder for (QC statements, PKCS#8 RSA keys).

/// Tags used here.
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const UTF8_STRING: u8 = 0x0c;
pub const SEQUENCE: u8 = 0x30;

/// One element: its tag and the bytes of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Reads the elements of a DER sequence's content (or any concatenation of elements).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// The next element, or `None` at the end or on malformed input (high tag numbers and
    /// indefinite lengths are not DER and are refused).
    pub fn next_element(&mut self) -> Option<Element<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
        };
        if rest.len() < length {
            return None;
        }
        let (content, after) = rest.split_at(length);
        self.rest = after;
        Some(Element { tag, content })
    }

    /// The next element if it has `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let element = self.next_element()?;
        (element.tag == tag).then_some(element.content)
    }
}

/// Dotted text of an OID's content bytes (`0.4.0.19495.2`).
pub fn oid_text(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, &byte) in content.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// Encodes one element.
pub fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    match u8::try_from(length) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = length.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let significant = &bytes[skip..];
            // At most 8 length bytes, so the count always fits in the low seven bits.
            out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0x7f));
            out.extend_from_slice(significant);
        }
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded elements.
pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    element(SEQUENCE, &parts.concat())
}

/// An OID from its arcs (the first two combined as X.690 says).
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let mut push = |mut value: u64| {
        let mut chunk = vec![u8::try_from(value & 0x7f).unwrap_or(0)];
        value >>= 7;
        while value > 0 {
            chunk.push(0x80 | u8::try_from(value & 0x7f).unwrap_or(0));
            value >>= 7;
        }
        chunk.reverse();
        content.extend(chunk);
    };
    match arcs {
        [first, second, rest @ ..] => {
            push(first * 40 + second);
            rest.iter().copied().for_each(push);
        }
        [only] => push(only * 40),
        [] => {}
    }
    element(OID, &content)
}

pub fn utf8(text: &str) -> Vec<u8> {
    element(UTF8_STRING, text.as_bytes())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = magnitude
            .iter()
            .take_while(|&&b| b == 0)
            .count()
            .min(magnitude.len().saturating_sub(1));
        &magnitude[skip..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    element(INTEGER, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_round_trip() {
        let encoded = oid(&[0, 4, 0, 19495, 2]);
        let mut reader = Reader::new(&encoded);
        let content = reader.expect(OID).unwrap();
        assert_eq!(oid_text(content).unwrap(), "0.4.0.19495.2");
        let encoded = oid(&[1, 3, 6, 1, 5, 5, 7, 1, 3]);
        assert_eq!(
            oid_text(Reader::new(&encoded).expect(OID).unwrap()).unwrap(),
            "1.3.6.1.5.5.7.1.3"
        );
    }

    #[test]
    fn lengths_and_integers() {
        let long = vec![7u8; 300];
        let encoded = element(OCTET_STRING, &long);
        assert_eq!(&encoded[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(
            Reader::new(&encoded).expect(OCTET_STRING).unwrap(),
            &long[..]
        );
        assert_eq!(
            unsigned_integer(&[0, 0, 0x80]),
            vec![0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(
            unsigned_integer(&[0x01, 0x00]),
            vec![0x02, 0x02, 0x01, 0x00]
        );
        assert_eq!(unsigned_integer(&[0]), vec![0x02, 0x01, 0x00]);
        // Truncated input is refused, not read past its end.
        assert!(Reader::new(&[0x30, 0x05, 0x01]).next_element().is_none());
        assert!(Reader::new(&[0x30, 0x80]).next_element().is_none());
    }
}
