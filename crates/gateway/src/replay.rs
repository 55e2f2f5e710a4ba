//! Nonce replay protection: a (AccessKey, nonce) pair is accepted once while its timestamp is
//! inside the window.
//!
//! Kept in memory, keyed by a 64-bit keyed hash so a busy region holds ~32 bytes per recent request.
//! A restart forgets it; a replay is then possible only within the remaining timestamp window, and
//! only of a request that was already accepted once. Noted in ARCHITECTURE.md.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

pub struct NonceCache {
    seen: Mutex<HashMap<u64, i64>>,
    hasher: RandomState,
    window_ms: i64,
}

impl NonceCache {
    pub fn new(window_ms: i64) -> Self {
        NonceCache { seen: Mutex::new(HashMap::new()), hasher: RandomState::new(), window_ms }
    }

    /// Records the nonce; false if it was already seen and has not expired.
    pub fn first_use(&self, access_key_id: &str, nonce: &str, request_time_ms: i64, now_ms: i64) -> bool {
        let key = self.hasher.hash_one((access_key_id, nonce));
        // After this instant the timestamp check alone rejects the request.
        let expires = request_time_ms.max(now_ms) + self.window_ms;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= 4096 && seen.len().is_power_of_two() {
            seen.retain(|_, &mut exp| exp > now_ms);
        }
        match seen.get(&key) {
            Some(&exp) if exp > now_ms => false,
            _ => {
                seen.insert(key, expires);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_rejected_until_expiry() {
        let c = NonceCache::new(1000);
        assert!(c.first_use("ak", "n1", 0, 0));
        assert!(!c.first_use("ak", "n1", 0, 10));
        assert!(c.first_use("ak2", "n1", 0, 10), "nonces are per AccessKey");
        assert!(c.first_use("ak", "n1", 0, 2000), "expired entries may be reused");
    }
}
