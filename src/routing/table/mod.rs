//! The warm domain table: every domain of the registry (exact and wildcard)
//! with its tenant, held compactly in memory. Once loaded it is
//! authoritative: a host it does not hold is unknown, answered without
//! asking the store (see docs/domain-table.md).
//!
//! Readers load one `Snapshot` (an immutable `Block` plus a small overlay of
//! changes since it was built) through an `ArcSwap`: they never block and
//! never see half a change. Writers (`load.rs`) are serialised by a mutex
//! and publish a new snapshot per change; a grown overlay is merged into a
//! new block in the background.

mod block;
mod fill;
mod load;
mod record;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::RoutedTenant;
use crate::store::Store;
use crate::tenant::host::MAX_HOST_LEN;
use block::Block;

/// Changes since the block was built: domain → its route now (`None`: removed).
type Overlay = HashMap<Box<str>, Option<Arc<RoutedTenant>>, foldhash::fast::RandomState>;

/// What the table says about a host.
pub(crate) enum Lookup {
    Found(Arc<RoutedTenant>),
    /// No tenant: the table is authoritative and holds no match.
    Unknown,
    /// The table cannot tell (not loaded, resyncing, or partial): ask the store.
    Miss,
}

/// One consistent state of the table.
#[derive(Default)]
struct Snapshot {
    block: Arc<Block>,
    overlay: Arc<Overlay>,
    /// Bumped by every full load, so a merge begun on an older block is dropped.
    generation: u64,
    /// Domains held (block and overlay together).
    domains: usize,
}

impl Snapshot {
    /// `Some(route)` when the table holds `domain` (`Some(None)`: removed).
    fn get(&self, domain: &str) -> Option<Option<Arc<RoutedTenant>>> {
        if let Some(changed) = self.overlay.get(domain) {
            return Some(changed.clone());
        }
        let record = self.block.get(domain.as_bytes())?;
        let tenant = self.block.records.tenant(record);
        Some(Some(Arc::new(RoutedTenant::new(tenant, domain.to_owned()))))
    }
}

/// Writers' state that readers never look at.
#[derive(Default)]
struct Loading {
    /// `Some` while a full load runs: domains changed meanwhile, applied after it.
    pending: Option<Vec<String>>,
    /// A full load was asked for while one was running.
    again: bool,
}

pub(crate) struct DomainTable {
    inner: Arc<Inner>,
}

struct Inner {
    snapshot: ArcSwap<Snapshot>,
    /// The table reflects the store (for the domains it holds): false until
    /// the first load, and from a lost change feed until the reload.
    in_step: AtomicBool,
    /// A full load was asked for (never, while warming is off).
    wanted: AtomicBool,
    /// It holds every domain (the registry fits in `max_domains`).
    complete: AtomicBool,
    /// The change feed sees every write to the registry, so an absent host
    /// is unknown (not so for a django-tenants layout without triggers).
    feed_sees_all: AtomicBool,
    max_domains: usize,
    /// Serialises writers (never taken by readers).
    writer: tokio::sync::Mutex<()>,
    loading: Mutex<Loading>,
    merging: AtomicBool,
    loaded_so_far: AtomicU64,
    store: Arc<dyn Store>,
}

impl DomainTable {
    pub(crate) fn new(store: Arc<dyn Store>, max_domains: u64) -> Self {
        DomainTable {
            inner: Arc::new(Inner {
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                in_step: AtomicBool::new(false),
                wanted: AtomicBool::new(false),
                complete: AtomicBool::new(false),
                feed_sees_all: AtomicBool::new(true),
                max_domains: usize::try_from(max_domains).unwrap_or(usize::MAX),
                writer: tokio::sync::Mutex::new(()),
                loading: Mutex::new(Loading::default()),
                merging: AtomicBool::new(false),
                loaded_so_far: AtomicU64::new(0),
                store,
            }),
        }
    }

    /// Resolves a normalised host: the exact domain, else the wildcard one
    /// label above it (exact beats wildcard).
    pub(crate) fn lookup(&self, host: &str) -> Lookup {
        let inner = &self.inner;
        if !inner.in_step.load(Ordering::Acquire) {
            return Lookup::Miss;
        }
        let snapshot = inner.snapshot.load();
        let complete = inner.complete.load(Ordering::Acquire);
        match snapshot.get(host) {
            Some(Some(route)) => return Lookup::Found(route),
            // A partial table may lack the host's exact domain, so it cannot
            // vouch for a wildcard (nor for an absent host).
            _ if !complete => return Lookup::Miss,
            _ => {}
        }
        let mut buf = [0u8; MAX_HOST_LEN + 2];
        if let Some(wildcard) = wildcard_of(host, &mut buf) {
            if let Some(Some(route)) = snapshot.get(wildcard) {
                return Lookup::Found(route);
            }
        }
        if inner.feed_sees_all.load(Ordering::Acquire) {
            Lookup::Unknown
        } else {
            Lookup::Miss
        }
    }

    /// Some writes bypass the change feed: hosts the table lacks are asked
    /// of the store, and the table is reloaded (serving meanwhile) every
    /// `period`, which bounds how stale its answers get.
    pub(crate) fn reload_every(&self, period: std::time::Duration) {
        self.inner.feed_sees_all.store(false, Ordering::Release);
        let table = DomainTable {
            inner: self.inner.clone(),
        };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if let Err(e) = table.load().await {
                    tracing::warn!(error = %e, "cannot reload the domain table; keeping the last one");
                }
            }
        });
    }

    /// Domains held now (while loading: loaded so far).
    pub(crate) fn domains(&self) -> u64 {
        let held = self.inner.snapshot.load().domains as u64;
        held.max(self.inner.loaded_so_far.load(Ordering::Relaxed))
    }

    /// Whether a full load asked for is not done yet: at start, after the
    /// change feed lost its place, or while a failed load is retried.
    pub(crate) fn is_loading(&self) -> bool {
        let inner = &self.inner;
        inner.wanted.load(Ordering::Acquire) && !inner.in_step.load(Ordering::Acquire)
    }

    /// Whether the table answers alone for hosts it does not hold.
    pub(crate) fn is_authoritative(&self) -> bool {
        let inner = &self.inner;
        inner.in_step.load(Ordering::Acquire)
            && inner.complete.load(Ordering::Acquire)
            && inner.feed_sees_all.load(Ordering::Acquire)
    }

    /// Heap bytes of the compact block (not the overlay).
    pub(crate) fn block_heap_bytes(&self) -> usize {
        self.inner.snapshot.load().block.heap_bytes()
    }
}

/// `*.parent` for `host` = `label.parent`, written into `buf` (no
/// allocation); `None` when the parent has no dot, like `wildcard_parent`.
fn wildcard_of<'a>(host: &str, buf: &'a mut [u8; MAX_HOST_LEN + 2]) -> Option<&'a str> {
    let dot = host.find('.')?;
    let parent = &host[dot + 1..];
    if !parent.contains('.') || parent.len() + 2 > buf.len() {
        return None;
    }
    buf[..2].copy_from_slice(b"*.");
    buf[2..2 + parent.len()].copy_from_slice(parent.as_bytes());
    std::str::from_utf8(&buf[..2 + parent.len()]).ok()
}

#[cfg(test)]
mod tests;
