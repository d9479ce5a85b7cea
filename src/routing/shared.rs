//! The shared cache's entries: a route with when the store gave it, the
//! flags behind stale-while-revalidate and stale-if-error, and how long moka
//! keeps an entry (freshness is decided on read, by `Router`).

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use super::Cached;
use crate::clock;

/// A shared-cache entry: the route and when the store said so. Past its TTL
/// it is still served while one request refreshes it, and while the store is
/// down (stale-while-revalidate, stale-if-error).
pub(super) struct SharedEntry {
    pub(super) route: Cached,
    pub(super) fetched_ms: u64,
    /// `Router::changes` before the store was asked (see `Router::settle`).
    pub(super) changes_seen: u64,
    /// Set when a change was applied while the store was being asked: the
    /// answer may predate it, so the entry counts as past its TTL.
    pub(super) outdated: AtomicBool,
    /// No refresh before this time (`clock::now_ms`): backoff after a failed one.
    pub(super) next_refresh_ms: AtomicU64,
    pub(super) refreshing: AtomicBool,
}

impl SharedEntry {
    pub(super) fn new(route: Cached, changes_seen: u64) -> Arc<SharedEntry> {
        Arc::new(SharedEntry {
            route,
            fetched_ms: clock::now_ms(),
            changes_seen,
            outdated: AtomicBool::new(false),
            next_refresh_ms: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        })
    }
}

/// How long a failed refresh waits before the next try, so a down store is
/// not asked once per request.
pub(super) const REFRESH_BACKOFF_MS: u64 = 1000;

/// Entries leave moka only by capacity, invalidation, or (for unknown hosts,
/// so junk does not linger) this many negative TTLs; freshness is checked on
/// read so stale routes can still be served while the store is down.
pub(super) const NEGATIVE_KEEP_FACTOR: u32 = 12;

pub(super) struct RouteExpiry {
    pub(super) negative_keep: Duration,
}

impl Expiry<String, Arc<SharedEntry>> for RouteExpiry {
    fn expire_after_create(
        &self,
        _host: &String,
        entry: &Arc<SharedEntry>,
        _now: Instant,
    ) -> Option<Duration> {
        entry.route.is_none().then_some(self.negative_keep)
    }
}
