//! Which user each account belongs to, remembered. An account never changes owner or tenant (a
//! sync's upsert leaves both alone) and its id is never reused, so what one read found stays
//! true; only whether the account still exists can change, and that the callers check by other
//! means (see `Hub::transactions`).

use std::collections::HashMap;
use std::sync::Mutex;

use kontor_domain::{AccountId, UserId};

/// Accounts remembered at most; when full, all are forgotten and remembered again as they are
/// read (an entry is about a hundred bytes).
const CAPACITY: usize = 8192;

#[derive(Debug, Default)]
pub struct AccountOwners {
    owners: Mutex<HashMap<AccountId, UserId>>,
}

impl AccountOwners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, UserId>> {
        // A panic while the lock was held leaves a map that is still whole.
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, account: &AccountId) -> Option<UserId> {
        self.lock().get(account).cloned()
    }

    pub fn remember(&self, account: &AccountId, owner: &UserId) {
        let mut owners = self.lock();
        if owners.len() >= CAPACITY && !owners.contains_key(account) {
            owners.clear();
        }
        owners.insert(account.clone(), owner.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::Region;

    #[test]
    fn remembers_owners_within_its_capacity() {
        let de = Region::parse("de").unwrap();
        let owners = AccountOwners::default();
        let user = UserId::generate(&de);
        let first = AccountId::generate(&de);
        assert_eq!(owners.get(&first), None);
        owners.remember(&first, &user);
        assert_eq!(owners.get(&first), Some(user.clone()));
        for _ in 1..CAPACITY {
            owners.remember(&AccountId::generate(&de), &user);
        }
        assert_eq!(owners.lock().len(), CAPACITY);
        // Full: one more forgets the rest.
        let last = AccountId::generate(&de);
        owners.remember(&last, &user);
        assert_eq!(owners.lock().len(), 1);
        assert_eq!(owners.get(&first), None);
        assert_eq!(owners.get(&last), Some(user));
    }
}
