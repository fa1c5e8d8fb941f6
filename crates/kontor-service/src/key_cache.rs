//! A brief, bounded memory of users' unwrapped data keys, so that a read does not ask the key
//! store and unwrap the key again on every request (a round trip to another database per page).
//!
//! What it may cost: after a user is erased, another node of the deployment may still hold the
//! key for at most the cache's lifetime — while this node forgets it at once, and never stores
//! a key it fetched before a shred it saw (the `shreds` count below). The erasure deletes the
//! user's rows right after shredding, so what such a node could still open is what it could have
//! opened with a key fetched a moment before the shred. Nothing is written anywhere.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kontor_crypto::DataKey;
use kontor_domain::UserId;

/// Keys kept at most; when full, lapsed ones go, and if none had lapsed, all go. A key holds
/// about half a kilobyte of expanded AES state.
pub const CAPACITY: usize = 4096;

pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

/// Says nothing about whose keys are held.
impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    keys: HashMap<String, (Instant, DataKey)>,
    /// Keys forgotten so far. A key fetched before one was forgotten is not stored: it may be
    /// the very key that was shredded meanwhile.
    shreds: u64,
}

impl KeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves a map that is still whole.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The user's key, if one was stored less than the lifetime ago.
    pub fn get(&self, user: &UserId, now: Instant) -> Option<DataKey> {
        let inner = self.lock();
        let (stored, key) = inner.keys.get(user.as_str())?;
        (now.saturating_duration_since(*stored) < self.ttl).then(|| key.clone())
    }

    /// What to hand back to [`Self::put`]: taken before the key is fetched.
    pub fn ticket(&self) -> u64 {
        self.lock().shreds
    }

    /// Remembers a key fetched after `ticket` was taken, unless some key was forgotten since.
    pub fn put(&self, user: &UserId, key: &DataKey, ticket: u64, now: Instant) {
        let mut inner = self.lock();
        if inner.shreds != ticket {
            return;
        }
        if inner.keys.len() >= self.capacity && !inner.keys.contains_key(user.as_str()) {
            let ttl = self.ttl;
            inner
                .keys
                .retain(|_, (stored, _)| now.saturating_duration_since(*stored) < ttl);
            if inner.keys.len() >= self.capacity {
                inner.keys.clear();
            }
        }
        inner
            .keys
            .insert(user.as_str().to_owned(), (now, key.clone()));
    }

    /// Forgets the user's key (it has just been shredded), and refuses keys fetched before now.
    pub fn forget(&self, user: &UserId) {
        let mut inner = self.lock();
        inner.shreds = inner.shreds.wrapping_add(1);
        inner.keys.remove(user.as_str());
    }

    /// Forgets every key (keys may have been shredded by a replay of the erasure ledger).
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.shreds = inner.shreds.wrapping_add(1);
        inner.keys.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_crypto::Keyring;

    fn key(owner: &str) -> DataKey {
        let keyring = Keyring::new(&[("k1".to_owned(), vec![7u8; 32])]).unwrap();
        keyring.new_data_key(owner).unwrap().0
    }

    fn users(n: usize) -> Vec<UserId> {
        let uk = kontor_domain::Region::parse("uk").unwrap();
        (0..n).map(|_| UserId::generate(&uk)).collect()
    }

    fn opens(found: Option<DataKey>, sealed_by: &DataKey) -> bool {
        let sealed = sealed_by.seal(b"x", "ctx").unwrap();
        found.is_some_and(|k| k.open(&sealed, "ctx").is_ok())
    }

    #[test]
    fn keeps_a_key_for_its_lifetime_only() {
        let cache = KeyCache::new(Duration::from_secs(2), 8);
        let u = users(2);
        let (alice, k) = (&u[0], key("a"));
        let t0 = Instant::now();
        let ticket = cache.ticket();
        cache.put(alice, &k, ticket, t0);
        assert!(opens(
            cache.get(alice, t0 + Duration::from_millis(1999)),
            &k
        ));
        assert!(cache.get(alice, t0 + Duration::from_secs(2)).is_none());
        assert!(cache.get(&u[1], t0).is_none());
    }

    #[test]
    fn a_forgotten_key_is_gone_and_one_fetched_before_is_not_stored() {
        let cache = KeyCache::new(Duration::from_secs(60), 8);
        let u = users(1);
        let (alice, k) = (&u[0], key("a"));
        let now = Instant::now();
        cache.put(alice, &k, cache.ticket(), now);
        // A read fetches the key from the key store …
        let ticket = cache.ticket();
        // … meanwhile the user is erased on this node …
        cache.forget(alice);
        assert!(cache.get(alice, now).is_none());
        // … and the read's key, fetched before, must not come back.
        cache.put(alice, &k, ticket, now);
        assert!(cache.get(alice, now).is_none());
        // A key fetched after the forget is stored again.
        cache.put(alice, &k, cache.ticket(), now);
        assert!(cache.get(alice, now).is_some());
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = KeyCache::new(Duration::from_secs(2), 3);
        let user = users(7);
        let user = |n: usize| &user[n];
        let k = key("a");
        let t0 = Instant::now();
        for n in 0..3 {
            cache.put(user(n), &k, cache.ticket(), t0);
        }
        // Full and nothing lapsed: all go, the new one stays.
        cache.put(user(3), &k, cache.ticket(), t0);
        assert_eq!(cache.len(), 1);
        let later = t0 + Duration::from_secs(1);
        cache.put(user(4), &k, cache.ticket(), later);
        cache.put(user(5), &k, cache.ticket(), later);
        // Full again: only the lapsed one (user 3, stored at t0) goes.
        let lapsed = t0 + Duration::from_secs(2);
        cache.put(user(6), &k, cache.ticket(), lapsed);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(user(3), lapsed).is_none());
        assert!(cache.get(user(4), lapsed).is_some());
        // Storing a key already held never evicts.
        cache.put(user(4), &k, cache.ticket(), lapsed);
        assert_eq!(cache.len(), 3);
    }
}
