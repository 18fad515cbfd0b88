//! Rate limits on signups: a fixed one-hour window per key (a client's
//! address, or a target address), kept in memory. Old windows are dropped
//! when the table grows, so a flood of distinct keys cannot grow it
//! without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys held before expired windows are swept out.
const SWEEP_AT: usize = 10_000;
/// Keys held at most; beyond, new keys are refused until windows expire.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct Limiter<K> {
    per_window: u32,
    window: Duration,
    seen: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> Limiter<K> {
    pub fn new(per_window: u32, window: Duration) -> Limiter<K> {
        Limiter {
            per_window,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one use by `key` at `now`; false when `key` is over its
    /// limit for the current window.
    pub fn allow(&self, key: K, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SWEEP_AT && !seen.contains_key(&key) {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
            if seen.len() >= MAX_KEYS {
                return false;
            }
        }
        let entry = seen.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_window {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_quota_per_window() {
        let limiter = Limiter::new(2, Duration::from_secs(3600));
        let t0 = Instant::now();
        assert!(limiter.allow("a", t0));
        assert!(limiter.allow("a", t0));
        assert!(!limiter.allow("a", t0 + Duration::from_secs(10)));
        assert!(limiter.allow("b", t0), "other keys are not affected");
        assert!(
            limiter.allow("a", t0 + Duration::from_secs(3600)),
            "a new window"
        );
    }

    #[test]
    fn expired_keys_are_swept() {
        let limiter = Limiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            assert!(limiter.allow(i, t0));
        }
        assert!(limiter.allow(SWEEP_AT, t0 + Duration::from_secs(61)));
        assert_eq!(limiter.seen.lock().unwrap().len(), 1);
    }
}
