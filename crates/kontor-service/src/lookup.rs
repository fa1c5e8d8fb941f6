//! Keyed hashes in place of plaintext lookups. Each use has its own key derived from the
//! deployment's root key (`Vault::lookup_key`) with a fixed label, and a prefix naming the form,
//! so a stored value says what it is and a change of scheme can be told apart:
//!
//! | stored | what | key |
//! |---|---|---|
//! | `ik1.…` | a tenant's Idempotency-Key | `HMAC(root, "kontor/idempotency-key/v1")` over (tenant, key) |
//! | `rh1.…` | the request made with it | `HMAC(root, "kontor/idempotency-request/v1")` over (tenant, SHA-256 of the canonical request) |
//! | `xi1.…` | a user's `external_id` (blind index) | `HMAC(HMAC(root, "kontor/external-id/v1"), tenant)` over the id |
//!
//! The request hash is keyed over the request's SHA-256 rather than the request itself so that
//! rows an earlier release stored with a bare SHA-256 convert without the request.

use kontor_crypto::LookupKey;
use kontor_domain::TenantId;
use kontor_domain::user::ExternalId;

pub(crate) fn idempotency_key(root: &LookupKey, tenant: &TenantId, key: &str) -> String {
    root.derive("kontor/idempotency-key/v1")
        .tag("ik1.", &[tenant.as_str().as_bytes(), key.as_bytes()])
}

pub(crate) fn request_hash(root: &LookupKey, tenant: &TenantId, sha256_hex: &str) -> String {
    root.derive("kontor/idempotency-request/v1")
        .tag("rh1.", &[tenant.as_str().as_bytes(), sha256_hex.as_bytes()])
}

pub(crate) fn external_id_index(root: &LookupKey, tenant: &TenantId, id: &ExternalId) -> String {
    root.derive("kontor/external-id/v1")
        .derive(tenant.as_str())
        .tag("xi1.", &[id.as_str().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_keyed_prefixed_and_tenant_scoped() {
        let root = LookupKey::from_bytes(&[3; 32]).unwrap();
        let other_root = LookupKey::from_bytes(&[4; 32]).unwrap();
        let a = TenantId::generate();
        let b = TenantId::generate();
        let id = ExternalId::parse("ada@example.com").unwrap();
        let index = external_id_index(&root, &a, &id);
        assert!(index.starts_with("xi1."));
        assert!(!index.contains("ada"));
        assert_eq!(index, external_id_index(&root, &a, &id));
        assert_ne!(index, external_id_index(&root, &b, &id));
        assert_ne!(index, external_id_index(&other_root, &a, &id));
        let key = idempotency_key(&root, &a, "k-1");
        assert!(key.starts_with("ik1.") && !key.contains("k-1"));
        assert_ne!(key, idempotency_key(&root, &b, "k-1"));
        let digest = "ab".repeat(32);
        let hash = request_hash(&root, &a, &digest);
        assert!(hash.starts_with("rh1."));
        assert_ne!(hash, request_hash(&root, &b, &digest));
        assert_ne!(hash, request_hash(&other_root, &a, &digest));
    }
}
