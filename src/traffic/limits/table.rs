//! The per-tenant state of the limits, in a map sharded by the tenant id's
//! hash: a lookup takes one shard's read lock for a hash probe, never across
//! an await. Entries idle for a minute and at rest (bucket full, nothing in
//! flight or waiting) are swept when a shard has doubled since its last
//! sweep, so memory follows the tenants active lately, not every tenant ever
//! seen. Forgetting an entry at rest loses nothing: a new one starts in the
//! same state; the idle minute keeps busy tenants' entries from churning.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::bucket::Bucket;
use super::gate::Gate;

/// Shards of the map (a power of two).
const SHARDS: usize = 64;
/// A shard is not swept below this many entries.
const MIN_SWEEP: usize = 64;
/// Seconds without a request before an entry may be swept.
pub const IDLE_SECS: u32 = 60;

/// One tenant's state.
#[derive(Debug, Default)]
pub struct Entry {
    pub bucket: Bucket,
    pub gate: Gate,
    /// When it was last looked up (seconds since the limiter's epoch).
    seen: AtomicU32,
}

impl Entry {
    fn touch(&self, now_secs: u32) {
        // Written once a second at most: the line stays shared between cores.
        if self.seen.load(Ordering::Relaxed) != now_secs {
            self.seen.store(now_secs, Ordering::Relaxed);
        }
    }

    fn idle(&self, now_secs: u32) -> bool {
        self.seen.load(Ordering::Relaxed).saturating_add(IDLE_SECS) <= now_secs
    }
}

type Map = HashMap<Box<str>, Arc<Entry>, foldhash::fast::FixedState>;

struct Shard {
    map: RwLock<Map>,
    /// Sweep when the shard reaches this many entries.
    sweep_at: AtomicUsize,
}

/// Tenant id → its state.
pub struct Table {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::FixedState,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    map: RwLock::new(Map::default()),
                    sweep_at: AtomicUsize::new(MIN_SWEEP),
                })
                .collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl Table {
    /// The state of `tenant`, created when missing, seen at `now_secs`.
    /// `at_rest(entry)` says whether an idle entry may be forgotten (its
    /// bucket full), for the sweep.
    pub fn entry(
        &self,
        tenant: &str,
        now_secs: u32,
        at_rest: impl Fn(&Entry) -> bool,
    ) -> Arc<Entry> {
        // The top bits pick the shard; the map uses the low ones.
        let shard = &self.shards[(self.hasher.hash_one(tenant) >> 58) as usize % SHARDS];
        if let Some(entry) = shard
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            entry.touch(now_secs);
            return entry.clone();
        }
        let mut map = shard.map.write().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(tenant.into()).or_default().clone();
        entry.touch(now_secs);
        if map.len() >= shard.sweep_at.load(Ordering::Relaxed) {
            // Under the write lock nobody can take a new reference, so an
            // entry only the map holds has no request in flight or waiting.
            map.retain(|_, e| Arc::strong_count(e) > 1 || !e.idle(now_secs) || !at_rest(e));
            shard
                .sweep_at
                .store((map.len() * 2).max(MIN_SWEEP), Ordering::Relaxed);
        }
        entry
    }

    /// Entries held now (for tests and the bench).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.map.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_at_rest_are_swept_and_busy_ones_kept() {
        let table = Table::default();
        let busy = table.entry("busy", 0, |_| true);
        // A tenant a second, each idle a minute later.
        for i in 0..100_000u32 {
            table.entry(&format!("t{i}"), i, |_| true);
        }
        // Each shard sweeps at 64 entries at least, and keeps those seen in
        // the last minute: about 64 × 64 + 60 at most.
        assert!(
            table.len() <= SHARDS * MIN_SWEEP + IDLE_SECS as usize,
            "{}",
            table.len()
        );
        assert!(Arc::ptr_eq(&busy, &table.entry("busy", 100_000, |_| true)));
        drop(busy);
        // Entries not at rest (a bucket still refilling), or seen in the
        // last minute, stay however many pass.
        let table = Table::default();
        for i in 0..10_000u32 {
            table.entry(&format!("t{i}"), i, |_| false);
        }
        assert_eq!(table.len(), 10_000);
        let table = Table::default();
        for i in 0..10_000 {
            table.entry(&format!("t{i}"), 30, |_| true);
        }
        assert_eq!(table.len(), 10_000);
    }
}
