//! A tenant's token bucket, kept as one atomic: the generic cell rate
//! algorithm (GCRA) stores the time at which the bucket would be full again
//! (the "theoretical arrival time"), so taking a token is one
//! compare-and-swap, and a changed rate or burst applies to the next request
//! with no state to rebuild: a bucket never owes more than it holds at the
//! current pace, so a raised rate is not held back by the old one's debt
//! (the next request passes and leaves the bucket empty at the new pace).

use std::sync::atomic::{AtomicU64, Ordering};

/// A rate as the bucket reads it: nanoseconds per token and the bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Nanoseconds between two tokens (1 / rate).
    pub interval: u64,
    /// Tokens the bucket holds (requests admitted at once after a quiet spell).
    pub burst: u32,
}

impl Pace {
    /// How far ahead of now the theoretical arrival time may run.
    fn tolerance(self) -> u64 {
        self.interval.saturating_mul(u64::from(self.burst))
    }
}

/// One tenant's bucket; times are nanoseconds since the limiter's epoch.
#[derive(Debug, Default)]
pub struct Bucket {
    /// When the bucket is full again; at or before now, it is full.
    full_at: AtomicU64,
}

impl Bucket {
    /// Takes a token at `now`, or says in how many nanoseconds one will be
    /// there.
    pub fn take(&self, now: u64, pace: Pace) -> Result<(), u64> {
        let tolerance = pace.tolerance();
        let mut full_at = self.full_at.load(Ordering::Relaxed);
        loop {
            let limit = now.saturating_add(tolerance);
            let start = if full_at > limit {
                // Only after the pace changed: owe no more than one request
                // at this pace, which then empties the bucket.
                limit - pace.interval.min(tolerance)
            } else {
                full_at.max(now)
            };
            let next = start.saturating_add(pace.interval);
            let ahead = next - now;
            if ahead > tolerance {
                return Err(ahead - tolerance);
            }
            match self.full_at.compare_exchange_weak(
                full_at,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => full_at = actual,
            }
        }
    }

    /// Gives back a token taken for a request that was not served here (the
    /// lean engine handing it to hyper, which admits it again).
    pub fn give_back(&self, pace: Pace) {
        let _ = self
            .full_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(pace.interval))
            });
    }

    /// Whether the bucket is full at `now`: forgetting it loses nothing.
    pub fn is_full(&self, now: u64) -> bool {
        self.full_at.load(Ordering::Relaxed) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_full_bucket_admits_its_burst_then_one_per_interval() {
        let bucket = Bucket::default();
        let pace = Pace {
            interval: 10 * MS,
            burst: 3,
        };
        let now = 1_000 * MS;
        for _ in 0..3 {
            bucket.take(now, pace).unwrap();
        }
        assert_eq!(bucket.take(now, pace), Err(10 * MS));
        assert_eq!(bucket.take(now + 4 * MS, pace), Err(6 * MS));
        bucket.take(now + 10 * MS, pace).unwrap();
        assert!(bucket.take(now + 10 * MS, pace).is_err());
        assert!(!bucket.is_full(now + 10 * MS));
        assert!(bucket.is_full(now + 40 * MS));
        // 1 s later: the burst again, not 100 saved tokens.
        let later = now + 1_000 * MS;
        for _ in 0..3 {
            bucket.take(later, pace).unwrap();
        }
        assert!(bucket.take(later, pace).is_err());
    }

    #[test]
    fn over_a_long_run_the_rate_is_what_passes() {
        let bucket = Bucket::default();
        let pace = Pace {
            interval: 10 * MS, // 100/s
            burst: 100,
        };
        // 1,000/s for 5 s.
        let admitted = (0..5_000u64)
            .filter(|i| bucket.take(1_000 * MS + i * MS, pace).is_ok())
            .count();
        assert!((590..=601).contains(&admitted), "{admitted}");
    }

    #[test]
    fn a_changed_pace_applies_to_the_next_request_and_tokens_go_back() {
        let bucket = Bucket::default();
        let slow = Pace {
            interval: 1_000 * MS,
            burst: 1,
        };
        let now = 5_000 * MS;
        bucket.take(now, slow).unwrap();
        assert!(bucket.take(now, slow).is_err());
        // The slow pace's second is not owed at the fast one: the next
        // request passes and leaves the bucket empty at the fast pace.
        let fast = Pace {
            interval: MS,
            burst: 10,
        };
        assert!(bucket.take(now, fast).is_ok());
        assert_eq!(bucket.take(now, fast), Err(MS));
        assert!(bucket.take(now + MS, fast).is_ok());
        bucket.give_back(fast);
        assert!(bucket.take(now + MS, fast).is_ok());
        assert!(bucket.take(now + MS, fast).is_err());
    }
}
