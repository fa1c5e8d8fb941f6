//! ETSI QC statements (EN 319 412-5) with the PSD2 statement of ETSI TS 119 495: the roles a
//! TPP's certificate grants (`PSP_AS`, `PSP_PI`, `PSP_AI`, `PSP_IC`) and its competent
//! authority. Read from TPP certificates; written into the demo TPP's certificates.

use serde::{Deserialize, Serialize};

use super::der::{self, Reader};

/// `id-pe-qcStatements`.
pub const QC_STATEMENTS_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 3];
/// `id-etsi-psd2-qcStatement` (TS 119 495 §5.1).
const PSD2_STATEMENT: &str = "0.4.0.19495.2";
/// `id-etsi-qcs-QcCompliance` and `id-etsi-qcs-QcType` (EN 319 412-5 §4.2.1, §4.2.3).
const QC_COMPLIANCE: &[u64] = &[0, 4, 0, 1862, 1, 1];
const QC_TYPE: &[u64] = &[0, 4, 0, 1862, 1, 6];

/// A PSD2 role of a payment service provider (TS 119 495 §5.1, `RolesOfPSP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PspRole {
    /// Account servicing (the bank itself).
    #[serde(rename = "PSP_AS")]
    As,
    /// Payment initiation.
    #[serde(rename = "PSP_PI")]
    Pi,
    /// Account information.
    #[serde(rename = "PSP_AI")]
    Ai,
    /// Issuing of card-based payment instruments (confirmation of funds).
    #[serde(rename = "PSP_IC")]
    Ic,
}

impl PspRole {
    pub const ALL: [PspRole; 4] = [Self::As, Self::Pi, Self::Ai, Self::Ic];

    /// `roleOfPspName`.
    pub fn name(self) -> &'static str {
        match self {
            Self::As => "PSP_AS",
            Self::Pi => "PSP_PI",
            Self::Ai => "PSP_AI",
            Self::Ic => "PSP_IC",
        }
    }

    /// `roleOfPspOid`: `id-psd2-role-psp-as` … `-ic` are 0.4.0.19495.1.1 … .4.
    pub fn oid(self) -> [u64; 6] {
        let last = match self {
            Self::As => 1,
            Self::Pi => 2,
            Self::Ai => 3,
            Self::Ic => 4,
        };
        [0, 4, 0, 19495, 1, last]
    }

    fn from_oid_text(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| {
            role.oid()
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")
                == text
        })
    }
}

/// The PSD2 attributes of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Psd2Attributes {
    pub roles: Vec<PspRole>,
    /// `nCAName`, e.g. `Federal Financial Supervisory Authority`.
    pub nca_name: String,
    /// `nCAId`, e.g. `DE-BAFIN`.
    pub nca_id: String,
}

/// Reads the PSD2 statement out of a `QCStatements` value; `None` when there is none or it is
/// malformed. A role counts by its OID; a role OID this sandbox does not know is ignored.
pub fn parse_psd2(qc_statements: &[u8]) -> Option<Psd2Attributes> {
    let mut statements = Reader::new(Reader::new(qc_statements).expect(der::SEQUENCE)?);
    while let Some(statement) = statements.next_element() {
        if statement.tag != der::SEQUENCE {
            return None;
        }
        let mut fields = Reader::new(statement.content);
        let id = der::oid_text(fields.expect(der::OID)?)?;
        if id != PSD2_STATEMENT {
            continue;
        }
        let mut info = Reader::new(fields.expect(der::SEQUENCE)?);
        let mut roles_reader = Reader::new(info.expect(der::SEQUENCE)?);
        let mut roles = Vec::new();
        while let Some(role) = roles_reader.next_element() {
            let mut parts = Reader::new(role.content);
            let oid = der::oid_text(parts.expect(der::OID)?)?;
            // `roleOfPspName` must be there, but the OID decides.
            parts.expect(der::UTF8_STRING)?;
            if let Some(known) = PspRole::from_oid_text(&oid)
                && !roles.contains(&known)
            {
                roles.push(known);
            }
        }
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).ok();
        let nca_name = text(info.expect(der::UTF8_STRING)?)?;
        let nca_id = text(info.expect(der::UTF8_STRING)?)?;
        roles.sort();
        return Some(Psd2Attributes {
            roles,
            nca_name,
            nca_id,
        });
    }
    None
}

/// What a certificate is for, in the `QcType` statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QcType {
    /// A website authentication certificate (QWAC): TLS.
    Web,
    /// An electronic seal (QSealC): signatures.
    Seal,
}

/// The DER of a `QCStatements` extension value: QC compliance, the type, and the PSD2
/// statement with `roles`.
pub fn encode(kind: QcType, roles: &[PspRole], nca_name: &str, nca_id: &str) -> Vec<u8> {
    let type_oid: &[u64] = match kind {
        QcType::Web => &[0, 4, 0, 1862, 1, 6, 3],
        QcType::Seal => &[0, 4, 0, 1862, 1, 6, 2],
    };
    let roles: Vec<Vec<u8>> = roles
        .iter()
        .map(|role| der::sequence(&[der::oid(&role.oid()), der::utf8(role.name())]))
        .collect();
    der::sequence(&[
        der::sequence(&[der::oid(QC_COMPLIANCE)]),
        der::sequence(&[der::oid(QC_TYPE), der::sequence(&[der::oid(type_oid)])]),
        der::sequence(&[
            der::oid(&[0, 4, 0, 19495, 2]),
            der::sequence(&[
                der::sequence(&roles),
                der::utf8(nca_name),
                der::utf8(nca_id),
            ]),
        ]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let encoded = encode(
            QcType::Web,
            &[PspRole::Pi, PspRole::Ai],
            "Federal Financial Supervisory Authority",
            "DE-BAFIN",
        );
        let parsed = parse_psd2(&encoded).unwrap();
        assert_eq!(parsed.roles, vec![PspRole::Pi, PspRole::Ai]);
        assert_eq!(parsed.nca_id, "DE-BAFIN");
        assert_eq!(parse_psd2(&encoded[..encoded.len() - 3]), None);
        let without_psd2 = der::sequence(&[der::sequence(&[der::oid(QC_COMPLIANCE)])]);
        assert_eq!(parse_psd2(&without_psd2), None);
    }
}
