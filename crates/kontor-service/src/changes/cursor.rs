//! The changes feed's cursor: a position in a connection's feed, opaque to tenants and signed
//! (HMAC-SHA256 under a key derived from the deployment's lookup key) over the tenant, the
//! connection and the position, so that a cursor altered, made up, or issued for another
//! connection or tenant is refused as `invalid_cursor` instead of read.
//!
//! The form is `ch1.<base64url JSON>.<base64url tag>`; only the hub reads the JSON.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kontor_crypto::LookupKey;
use kontor_domain::{AccountId, ConnectionId, TenantId};
use kontor_store::PageKey;
use serde::{Deserialize, Serialize};

use crate::ErrorCode;
use crate::error::ServiceError;

const PREFIX: &str = "ch1.";
const LABEL: &str = "kontor/changes-cursor/v1";
/// Longer than any cursor the hub issues; a longer one is refused before it is decoded.
const MAX_LEN: usize = 512;

/// Where a tenant is in a connection's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// The first pass: every transaction as it is now, account by account, each in the list
    /// endpoint's order. `seq` is the log's head when the pass began; the log is read from
    /// there once the pass is through, so that nothing changed meanwhile is missed.
    Snapshot {
        seq: i64,
        account: Option<AccountId>,
        after: Option<PageKey>,
    },
    /// Everything up to `seq` in the log has been handed out.
    Log { seq: i64 },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    q: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    s: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<String>,
}

pub(crate) fn invalid() -> ServiceError {
    ServiceError::invalid(
        ErrorCode::InvalidCursor,
        "the cursor is not one this API issued for this connection",
    )
}

fn signing_key(root: &LookupKey) -> LookupKey {
    root.derive(LABEL)
}

fn parts<'a>(
    tenant: &'a TenantId,
    connection: &'a ConnectionId,
    payload: &'a [u8],
) -> [&'a [u8]; 3] {
    [
        tenant.as_str().as_bytes(),
        connection.as_str().as_bytes(),
        payload,
    ]
}

impl Position {
    pub(crate) fn encode(
        &self,
        root: &LookupKey,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> String {
        let wire = match self {
            Position::Log { seq } => Wire {
                q: *seq,
                s: false,
                a: None,
                t: None,
                i: None,
            },
            Position::Snapshot {
                seq,
                account,
                after,
            } => Wire {
                q: *seq,
                s: true,
                a: account.as_ref().map(ToString::to_string),
                t: after.as_ref().map(|k| k.sort),
                i: after.as_ref().map(|k| k.id.clone()),
            },
        };
        // Serialising a struct of numbers and strings cannot fail.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default());
        let tag = signing_key(root).tag("", &parts(tenant, connection, payload.as_bytes()));
        format!("{PREFIX}{payload}.{tag}")
    }

    pub(crate) fn decode(
        raw: &str,
        root: &LookupKey,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Self, ServiceError> {
        if raw.len() > MAX_LEN {
            return Err(invalid());
        }
        let (payload, tag) = raw
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(invalid)?;
        if !signing_key(root).verify(&parts(tenant, connection, payload.as_bytes()), tag) {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if wire.q < 0 {
            return Err(invalid());
        }
        if !wire.s {
            return match (wire.a, wire.t, wire.i) {
                (None, None, None) => Ok(Position::Log { seq: wire.q }),
                _ => Err(invalid()),
            };
        }
        let account = wire
            .a
            .map(|a| AccountId::parse(&a))
            .transpose()
            .map_err(|_| invalid())?;
        let after = match (wire.t, wire.i) {
            (Some(sort), Some(id)) if account.is_some() => Some(PageKey { sort, id }),
            (None, None) => None,
            _ => return Err(invalid()),
        };
        Ok(Position::Snapshot {
            seq: wire.q,
            account,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::Region;

    fn ids() -> (TenantId, ConnectionId, ConnectionId) {
        let region = Region::parse("de").unwrap();
        (
            TenantId::generate(),
            ConnectionId::generate(&region),
            ConnectionId::generate(&region),
        )
    }

    #[test]
    fn positions_round_trip_and_are_bound_to_tenant_connection_and_key() {
        let root = LookupKey::from_bytes(&[5; 32]).unwrap();
        let (tenant, connection, other) = ids();
        let account = AccountId::generate(connection.region());
        for position in [
            Position::Log { seq: 0 },
            Position::Log { seq: 42 },
            Position::Snapshot {
                seq: 3,
                account: None,
                after: None,
            },
            Position::Snapshot {
                seq: 3,
                account: Some(account.clone()),
                after: None,
            },
            Position::Snapshot {
                seq: 3,
                account: Some(account),
                after: Some(PageKey {
                    sort: 2_460_000,
                    id: "txn_de_x".into(),
                }),
            },
        ] {
            let cursor = position.encode(&root, &tenant, &connection);
            assert!(cursor.starts_with("ch1."), "{cursor}");
            assert_eq!(
                Position::decode(&cursor, &root, &tenant, &connection).unwrap(),
                position
            );
            // Another connection, another tenant, another deployment: refused.
            assert!(Position::decode(&cursor, &root, &tenant, &other).is_err());
            assert!(Position::decode(&cursor, &root, &TenantId::generate(), &connection).is_err());
            let elsewhere = LookupKey::from_bytes(&[6; 32]).unwrap();
            assert!(Position::decode(&cursor, &elsewhere, &tenant, &connection).is_err());
        }
    }

    #[test]
    fn altered_or_made_up_cursors_are_refused() {
        let root = LookupKey::from_bytes(&[5; 32]).unwrap();
        let (tenant, connection, _) = ids();
        let cursor = Position::Log { seq: 7 }.encode(&root, &tenant, &connection);
        let (payload, tag) = cursor
            .strip_prefix(PREFIX)
            .unwrap()
            .split_once('.')
            .unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"q":1}"#);
        let long = "a".repeat(MAX_LEN + 1);
        for bad in [
            String::new(),
            "ch1.".into(),
            "garbage".into(),
            format!("ch1.{forged_payload}.{tag}"),
            format!("ch1.{payload}.{}", &tag[1..]),
            format!("ch1.{payload}"),
            format!("ch2.{payload}.{tag}"),
            long,
        ] {
            let err = Position::decode(&bad, &root, &tenant, &connection).unwrap_err();
            assert!(
                matches!(
                    err,
                    ServiceError::Invalid {
                        code: ErrorCode::InvalidCursor,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }
}
