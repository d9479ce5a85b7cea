//! A coarse monotonic clock for the hot path: one relaxed atomic load instead
//! of a clock read. A background thread advances it every few milliseconds;
//! the per-worker route table and backend ejections only need that precision.
//! Also the wall-clock seconds that stored timestamps use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often the clock advances: the error bound of `now_ms`.
const TICK: Duration = Duration::from_millis(5);

static NOW_MS: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since the clock started, at most `TICK` behind.
pub fn now_ms() -> u64 {
    static TICKER: OnceLock<()> = OnceLock::new();
    TICKER.get_or_init(|| {
        let epoch = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("coarse-clock".into())
            .spawn(move || loop {
                NOW_MS.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                std::thread::sleep(TICK);
            });
        if spawned.is_err() {
            tracing::error!("cannot start the coarse clock thread; route expiry will not advance");
        }
    });
    NOW_MS.load(Ordering::Relaxed)
}

/// Seconds since the Unix epoch, now (wall clock, for stored timestamps).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now, to the second, as RFC 3339 in UTC (`2026-12-07T19:00:00Z`).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_advances() {
        let start = super::now_ms();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(super::now_ms() >= start + 30);
    }
}
