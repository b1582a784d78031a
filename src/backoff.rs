//! Capped exponential back-off with full jitter, for retrying Telegram through an
//! outage without hammering it, and the "log once per state change" rule.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_F491_4F6C_DD1D);
        Backoff::with_seed(base, cap, seed)
    }

    pub fn with_seed(base: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
            rng: seed | 1,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns how long to wait: a random time between half
    /// and all of `base * 2^failures`, capped.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.base.saturating_mul(1 << exp).min(self.cap);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_millis() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            self.random() % (spread + 1)
        };
        half + Duration::from_millis(jitter)
    }

    /// Records a success; returns how many failures it ends (0 if none).
    pub fn succeed(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::with_seed(Duration::from_secs(1), Duration::from_secs(30), 42);
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_secs(1 << i.min(16)).min(Duration::from_secs(30));
            assert!(*d >= ceiling / 2 && *d <= ceiling, "{i}: {d:?}");
        }
        assert_eq!(b.succeed(), 10);
        assert_eq!(b.succeed(), 0);
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
