//! Writing the warm domain table: the full load from the store (at start,
//! and after the change feed lost its place), the change feed's changes
//! (each re-read from the store and put in the overlay), and the background
//! merge of a grown overlay into a new compact block.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::block::{Block, BlockBuilder};
use super::fill;
use super::{DomainTable, Inner, Overlay, Snapshot};
use crate::routing::RoutedTenant;
use crate::store::{HostMatch, StoreError};

/// An overlay merges into a new block once it holds this many domains, or
/// a 64th of the block if that is more (so merges cost O(1) per change, and
/// each change copies a small overlay).
const MERGE_AT: usize = 4096;
/// Pauses between failed reloads, doubling up to the last.
const RELOAD_BACKOFF: [Duration; 4] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
];

impl DomainTable {
    /// Loads every domain (up to `max_domains`) from the store, then applies
    /// the changes made meanwhile; from then on the table is in step.
    /// Returns how many domains it holds.
    pub(crate) async fn load(&self) -> Result<u64, StoreError> {
        self.inner.load().await
    }

    /// Re-reads `domains` from the store after a change to them.
    pub(crate) async fn changed(&self, domains: &[String]) {
        self.inner.changed(domains).await;
    }

    /// The feed lost its place (or a bulk change): the table stops
    /// answering until a full reload, retried in the background, is done.
    pub(crate) fn reload(&self) {
        self.inner.clone().reload();
    }
}

impl Inner {
    async fn load(self: &Arc<Self>) -> Result<u64, StoreError> {
        self.wanted.store(true, Ordering::Release);
        let running = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            let running = loading.pending.is_some();
            if running {
                // It loads once more when done, from after this call.
                loading.again = true;
            } else {
                loading.pending = Some(Vec::new());
            }
            running
        };
        if running {
            return self.until_loaded().await;
        }
        loop {
            let loaded = self.load_once().await;
            self.loaded_so_far.store(0, Ordering::Relaxed);
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            if loaded.is_err() {
                loading.pending = None;
                loading.again = false;
                return loaded;
            }
            if !std::mem::take(&mut loading.again) {
                return loaded;
            }
            // Asked to reload while loading: what was loaded may predate it.
            self.in_step.store(false, Ordering::Release);
            loading.pending = Some(Vec::new());
        }
    }

    /// Waits for the load that is running (a reload in the background).
    async fn until_loaded(&self) -> Result<u64, StoreError> {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            if loading.pending.is_none() {
                break;
            }
        }
        if self.in_step.load(Ordering::Acquire) {
            Ok(self.snapshot.load().domains as u64)
        } else {
            Err(StoreError::Unavailable(
                "the domain table's load failed; retrying".into(),
            ))
        }
    }

    async fn load_once(self: &Arc<Self>) -> Result<u64, StoreError> {
        // The store reads (on its thread) while a thread of our own builds.
        let (sink, parts, returns) = fill::channel(self.max_domains);
        let inner = self.clone();
        let building = tokio::task::spawn_blocking(move || {
            fill::build(parts, returns, inner.max_domains, &inner.loaded_so_far)
        });
        let read = self.store.scan_routes(Box::new(sink)).await;
        let built = building.await;
        read?;
        let (builder, partial) =
            built.map_err(|e| StoreError::Backend(format!("building the domain table: {e}")))?;
        let block = tokio::task::spawn_blocking(move || builder.finish())
            .await
            .map_err(|e| StoreError::Backend(format!("building the domain table: {e}")))?;
        let held = block.len();
        let _writer = self.writer.lock().await;
        let pending = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            loading.pending.take().unwrap_or_default()
        };
        let generation = self.snapshot.load().generation + 1;
        self.snapshot.store(Arc::new(Snapshot {
            domains: held,
            block: Arc::new(block),
            overlay: Arc::default(),
            generation,
        }));
        self.complete.store(!partial, Ordering::Release);
        if partial {
            tracing::warn!(
                domains = held,
                "the domain table is partial (cache.table_max_domains): other hosts are looked up in the store"
            );
        }
        self.apply(&pending).await?;
        self.in_step.store(true, Ordering::Release);
        Ok(self.snapshot.load().domains as u64)
    }

    async fn changed(self: &Arc<Self>, domains: &[String]) {
        {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(pending) = &mut loading.pending {
                pending.extend_from_slice(domains);
                return;
            }
        }
        // Taken before looking at `in_step`: a load that took the pending
        // changes holds it until it is in step, then these are applied.
        let _writer = self.writer.lock().await;
        if !self.in_step.load(Ordering::Acquire) {
            // Never loaded (warming is off), or a reload is coming.
            return;
        }
        if let Err(e) = self.apply(domains).await {
            tracing::warn!(error = %e, "cannot re-read changed domains: reloading the domain table");
            self.clone().reload();
            return;
        }
        self.maybe_merge();
    }

    fn reload(self: Arc<Self>) {
        // A table never asked to load (`cache.warm: false`) stays empty: a
        // bulk change then has nothing here to refresh.
        if !self.wanted.load(Ordering::Acquire) {
            return;
        }
        self.in_step.store(false, Ordering::Release);
        {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            if loading.pending.is_some() {
                loading.again = true;
                return;
            }
        }
        tokio::spawn(async move {
            for failures in 0.. {
                match self.load().await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload the domain table; retrying");
                        let pause = RELOAD_BACKOFF[failures.min(RELOAD_BACKOFF.len() - 1)];
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        });
    }

    /// Re-reads `domains` and publishes them in a new overlay. The caller
    /// holds the writer lock, so changes are applied in order.
    async fn apply(&self, domains: &[String]) -> Result<(), StoreError> {
        if domains.is_empty() {
            return Ok(());
        }
        let found: HashMap<String, HostMatch> = self
            .store
            .routes_for(domains)
            .await?
            .into_iter()
            .map(|m| (m.domain.clone(), m))
            .collect();
        let snapshot = self.snapshot.load_full();
        let complete = self.complete.load(Ordering::Acquire);
        let mut next = Snapshot {
            block: snapshot.block.clone(),
            overlay: snapshot.overlay.clone(),
            generation: snapshot.generation,
            domains: snapshot.domains,
        };
        let overlay = Arc::make_mut(&mut next.overlay);
        for domain in domains {
            let held = next_holds(&next.block, overlay, domain);
            let in_block = next.block.get(domain.as_bytes()).is_some();
            match found.get(domain) {
                // A partial table leaves new domains to the store lookup.
                Some(_) if !complete && !held => continue,
                Some(m) => {
                    let route = RoutedTenant::new(m.tenant.clone(), domain.clone());
                    overlay.insert(domain.as_str().into(), Some(Arc::new(route)));
                    next.domains += usize::from(!held);
                }
                None => {
                    if in_block {
                        overlay.insert(domain.as_str().into(), None);
                    } else {
                        overlay.remove(domain.as_str());
                    }
                    next.domains -= usize::from(held);
                }
            }
        }
        self.snapshot.store(Arc::new(next));
        Ok(())
    }

    /// Starts a background merge when the overlay has grown.
    fn maybe_merge(self: &Arc<Self>) {
        let snapshot = self.snapshot.load_full();
        if snapshot.overlay.len() < MERGE_AT.max(snapshot.block.len() / 64)
            || self.merging.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let base = snapshot.clone();
            let merged =
                tokio::task::spawn_blocking(move || merge(&base.block, &base.overlay)).await;
            if let Ok(merged) = merged {
                let _writer = inner.writer.lock().await;
                let now = inner.snapshot.load_full();
                if now.generation == snapshot.generation && Arc::ptr_eq(&now.block, &snapshot.block)
                {
                    // Changes that came during the merge stay in the overlay.
                    let overlay: Overlay = now
                        .overlay
                        .iter()
                        .filter(|(domain, route)| {
                            !snapshot
                                .overlay
                                .get(*domain)
                                .is_some_and(|merged| same(merged, route))
                        })
                        .map(|(d, r)| (d.clone(), r.clone()))
                        .collect();
                    inner.snapshot.store(Arc::new(Snapshot {
                        block: Arc::new(merged),
                        overlay: Arc::new(overlay),
                        generation: now.generation,
                        domains: now.domains,
                    }));
                }
            }
            inner.merging.store(false, Ordering::Release);
        });
    }
}

fn next_holds(block: &Block, overlay: &Overlay, domain: &str) -> bool {
    match overlay.get(domain) {
        Some(route) => route.is_some(),
        None => block.get(domain.as_bytes()).is_some(),
    }
}

fn same(a: &Option<Arc<RoutedTenant>>, b: &Option<Arc<RoutedTenant>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// A new block holding `block` with `overlay` applied.
fn merge(block: &Block, overlay: &Overlay) -> Block {
    let mut builder = BlockBuilder::default();
    for (host, record) in block.entries() {
        let changed = std::str::from_utf8(host).is_ok_and(|h| overlay.contains_key(h));
        if !changed {
            builder.push_from(host, &block.records, record);
        }
    }
    for (domain, route) in overlay {
        if let Some(route) = route {
            builder.push(domain.as_bytes(), &route.tenant);
        }
    }
    builder.finish()
}
