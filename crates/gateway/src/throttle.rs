//! Per-AccessKey flow control (`Throttling.User`), a token bucket per key via `governor`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

#[derive(Clone, Copy, Debug)]
pub struct ThrottleConfig {
    /// Sustained requests per second per AccessKey; 0 turns throttling off.
    pub per_key_rps: u32,
    /// Requests a key may send at once above the sustained rate.
    pub burst: u32,
}

pub struct Throttle {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        let limiter = NonZeroU32::new(cfg.per_key_rps).map(|rps| {
            let burst = NonZeroU32::new(cfg.burst.max(cfg.per_key_rps)).unwrap_or(rps);
            RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst))
        });
        Throttle { limiter, clock: DefaultClock::default() }
    }

    /// `Ok` if `key` may proceed, else the milliseconds until it may.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        if l.len() > 100_000 {
            l.retain_recent();
        }
        l.check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()).as_millis().max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let t = Throttle::new(ThrottleConfig { per_key_rps: 1, burst: 2 });
        assert!(t.check("a").is_ok());
        assert!(t.check("a").is_ok());
        assert!(t.check("a").is_err());
        assert!(t.check("b").is_ok(), "other keys are not affected");
        let off = Throttle::new(ThrottleConfig { per_key_rps: 0, burst: 0 });
        assert!((0..1000).all(|_| off.check("a").is_ok()));
    }
}
