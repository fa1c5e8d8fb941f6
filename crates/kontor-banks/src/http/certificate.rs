//! What the hub knows about one of its own certificates: subject, issuer, serial, validity and
//! the PSD2 attributes an eIDAS certificate carries (ETSI TS 119 495: the roles inside the
//! `qcStatements` extension, the competent authority, and the subject's
//! `organizationIdentifier`, such as `PSDDE-BAFIN-123456`). Read with x509-parser; the QC
//! statements with a small DER reader of their own, since x509-parser leaves them unparsed.

use std::fmt;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

/// `id-pe-qcStatements` (RFC 3739).
const QC_STATEMENTS: &str = "1.3.6.1.5.5.7.1.3";
/// `id-etsi-psd2-qcStatement`.
const PSD2_STATEMENT: &str = "0.4.0.19495.2";
/// `organizationIdentifier` (X.520).
const ORGANIZATION_IDENTIFIER: &str = "2.5.4.97";

/// A PSD2 role (ETSI TS 119 495 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum PspRole {
    /// Account servicing (a bank).
    #[serde(rename = "PSP_AS")]
    AccountServicing,
    /// Payment initiation.
    #[serde(rename = "PSP_PI")]
    PaymentInitiation,
    /// Account information.
    #[serde(rename = "PSP_AI")]
    AccountInformation,
    /// Issuing card-based payment instruments.
    #[serde(rename = "PSP_IC")]
    CardIssuing,
}

impl PspRole {
    fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "0.4.0.19495.1.1" => Some(Self::AccountServicing),
            "0.4.0.19495.1.2" => Some(Self::PaymentInitiation),
            "0.4.0.19495.1.3" => Some(Self::AccountInformation),
            "0.4.0.19495.1.4" => Some(Self::CardIssuing),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountServicing => "PSP_AS",
            Self::PaymentInitiation => "PSP_PI",
            Self::AccountInformation => "PSP_AI",
            Self::CardIssuing => "PSP_IC",
        }
    }
}

impl fmt::Display for PspRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The PSD2 QC statement of an eIDAS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Psd2Attributes {
    pub roles: Vec<PspRole>,
    /// The competent authority's name, e.g. `Federal Financial Supervisory Authority`.
    pub nca_name: String,
    /// Its identifier, e.g. `DE-BAFIN`.
    pub nca_id: String,
}

/// A certificate as `kontor banks check` and `kontor config print` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// Hexadecimal, lower case.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The subject's `organizationIdentifier` (`PSDDE-BAFIN-123456`), when it has one.
    pub organization_identifier: Option<String>,
    /// `None`: the certificate carries no PSD2 QC statement (not an eIDAS PSD2 certificate;
    /// a UK OBWAC, for instance).
    pub psd2: Option<Psd2Attributes>,
}

impl CertificateInfo {
    /// Reads a DER certificate; `Err` says why it is not one.
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let organization_identifier = cert
            .subject()
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == ORGANIZATION_IDENTIFIER)
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned);
        let mut psd2 = None;
        for extension in cert.extensions() {
            if extension.oid.to_id_string() == QC_STATEMENTS {
                psd2 = psd2_statement(extension.value)
                    .map_err(|e| format!("qcStatements extension: {e}"))?;
            }
        }
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string().replace(':', "").to_lowercase(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            organization_identifier,
            psd2,
        })
    }

    pub fn has_role(&self, role: PspRole) -> bool {
        self.psd2.as_ref().is_some_and(|p| p.roles.contains(&role))
    }

    /// The roles as text (`PSP_AI, PSP_PI`), or `none` without a PSD2 statement.
    pub fn roles_text(&self) -> String {
        match &self.psd2 {
            Some(p) if !p.roles.is_empty() => p
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".to_owned(),
        }
    }
}

/// The PSD2 statement inside a `QCStatements` value, if there is one.
fn psd2_statement(value: &[u8]) -> Result<Option<Psd2Attributes>, String> {
    let mut statements = Der::new(value).sequence()?;
    if !value.is_empty() && !Der::new(value).rest_after_one()?.is_empty() {
        return Err("trailing bytes".into());
    }
    while !statements.is_empty() {
        let mut statement = statements.sequence()?;
        let id = statement.oid()?;
        if id != PSD2_STATEMENT {
            continue;
        }
        let mut info = statement.sequence()?;
        let mut roles_der = info.sequence()?;
        let mut roles = Vec::new();
        while !roles_der.is_empty() {
            let mut role = roles_der.sequence()?;
            // Unknown role OIDs are kept out rather than refused: a later edition may add roles.
            if let Some(known) = PspRole::from_oid(&role.oid()?) {
                roles.push(known);
            }
        }
        roles.sort();
        roles.dedup();
        let nca_name = info.utf8()?;
        let nca_id = info.utf8()?;
        return Ok(Some(Psd2Attributes {
            roles,
            nca_name,
            nca_id,
        }));
    }
    Ok(None)
}

/// A cursor over DER elements.
struct Der<'a> {
    input: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// The next element's tag and content.
    fn element(&mut self) -> Result<(u8, &'a [u8]), String> {
        let [tag, first, rest @ ..] = self.input else {
            return Err("truncated element".into());
        };
        let (len, rest) = if first & 0x80 == 0 {
            (usize::from(*first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err("bad length".into());
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[count..])
        };
        if rest.len() < len {
            return Err("truncated element".into());
        }
        let (content, after) = rest.split_at(len);
        self.input = after;
        Ok((*tag, content))
    }

    fn rest_after_one(mut self) -> Result<&'a [u8], String> {
        self.element()?;
        Ok(self.input)
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        match self.element()? {
            (t, content) if t == tag => Ok(content),
            (t, _) => Err(format!("expected {what}, found tag {t:#04x}")),
        }
    }

    fn sequence(&mut self) -> Result<Der<'a>, String> {
        self.expect(0x30, "a SEQUENCE").map(Der::new)
    }

    fn utf8(&mut self) -> Result<String, String> {
        let bytes = self.expect(0x0c, "a UTF8String")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a UTF8String that is not UTF-8".into())
    }

    /// An OBJECT IDENTIFIER in dotted form.
    fn oid(&mut self) -> Result<String, String> {
        let bytes = self.expect(0x06, "an OBJECT IDENTIFIER")?;
        let (&first, rest) = bytes.split_first().ok_or("an empty OID")?;
        let mut arcs = vec![u64::from(first / 40).min(2)];
        arcs.push(u64::from(first) - arcs[0] * 40);
        let mut value: u64 = 0;
        for &b in rest {
            if value > u64::MAX >> 7 {
                return Err("an OID arc too large".into());
            }
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                arcs.push(value);
                value = 0;
            }
        }
        Ok(arcs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 128 {
            out.push(u8::try_from(len).unwrap());
        } else {
            out.push(0x82);
            out.extend(u16::try_from(len).unwrap().to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    // 0.4.0.19495.2 and 0.4.0.19495.1.{2,3}, DER-encoded by hand.
    const PSD2: &[u8] = &[0x04, 0x00, 0x81, 0x98, 0x27, 0x02];
    const PI: &[u8] = &[0x04, 0x00, 0x81, 0x98, 0x27, 0x01, 0x02];
    const AI: &[u8] = &[0x04, 0x00, 0x81, 0x98, 0x27, 0x01, 0x03];

    fn statement(roles: &[(&[u8], &str)]) -> Vec<u8> {
        let roles: Vec<u8> = roles
            .iter()
            .flat_map(|(oid, name)| {
                tlv(0x30, &[tlv(0x06, oid), tlv(0x0c, name.as_bytes())].concat())
            })
            .collect();
        let info = tlv(
            0x30,
            &[
                tlv(0x30, &roles),
                tlv(0x0c, b"Federal Financial Supervisory Authority"),
                tlv(0x0c, b"DE-BAFIN"),
            ]
            .concat(),
        );
        // QcCompliance (0.4.0.1862.1.1) first, without info, then the PSD2 statement.
        let compliance = tlv(0x30, &tlv(0x06, &[0x04, 0x00, 0x8e, 0x46, 0x01, 0x01]));
        tlv(
            0x30,
            &[compliance, tlv(0x30, &[tlv(0x06, PSD2), info].concat())].concat(),
        )
    }

    #[test]
    fn reads_roles_and_authority() {
        let value = statement(&[(AI, "PSP_AI"), (PI, "PSP_PI")]);
        let psd2 = psd2_statement(&value).unwrap().unwrap();
        assert_eq!(
            psd2.roles,
            vec![PspRole::PaymentInitiation, PspRole::AccountInformation]
        );
        assert_eq!(psd2.nca_name, "Federal Financial Supervisory Authority");
        assert_eq!(psd2.nca_id, "DE-BAFIN");
    }

    #[test]
    fn no_psd2_statement_and_broken_ones() {
        let compliance_only = tlv(
            0x30,
            &tlv(0x30, &tlv(0x06, &[0x04, 0x00, 0x8e, 0x46, 0x01, 0x01])),
        );
        assert_eq!(psd2_statement(&compliance_only).unwrap(), None);
        let good = statement(&[(AI, "PSP_AI")]);
        for cut in [1, 5, good.len() / 2, good.len() - 1] {
            assert!(psd2_statement(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good;
        trailing.push(0);
        assert!(psd2_statement(&trailing).is_err());
        assert!(CertificateInfo::parse(b"not der").is_err());
    }
}
