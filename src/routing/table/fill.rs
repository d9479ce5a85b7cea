//! The full load in two halves on two threads, so reading rows and building
//! the block overlap: the store's read hands each route to a `Chunker` (on
//! the store's thread), which encodes each tenant once and packs domains
//! into chunks; `build` (on a thread of its own) interns the chunks'
//! tenants and appends their domains to a `BlockBuilder`. A store that
//! reads on two threads gets a second `Chunker` (`RouteSink::split`), and
//! `build` takes both one's chunks and the other's.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::block::BlockBuilder;
use super::record;
use crate::store::RouteSink;
use crate::tenant::Tenant;

/// Domains per chunk: large enough that the channel costs nothing per row,
/// small enough that a chunk (~1.5 MB) stays in cache.
const CHUNK_ROUTES: usize = 16_384;
/// Chunks read ahead of the builder.
const CHUNKS_IN_FLIGHT: usize = 4;

pub(super) enum Part {
    /// About how many routes are coming.
    Expect(usize),
    /// Tenants come grouped: none needs interning.
    Grouped,
    Chunk(Chunk),
}

#[derive(Default)]
pub(super) struct Chunk {
    /// Which `Chunker` filled it: a chunk continues that one's chunk before.
    source: usize,
    /// The domains' bytes back to back, and where each ends.
    hosts: Vec<u8>,
    host_ends: Vec<u32>,
    /// Whether domain `i` starts a tenant: the next of `records` (else it
    /// has the tenant of the domain before, maybe in the chunk before).
    new_tenant: Vec<bool>,
    /// Encoded tenants back to back, and where each ends.
    records: Vec<u8>,
    record_ends: Vec<u32>,
}

impl Chunk {
    fn clear(&mut self) {
        self.hosts.clear();
        self.host_ends.clear();
        self.new_tenant.clear();
        self.records.clear();
        self.record_ends.clear();
    }
}

/// A sink for `Store::scan_routes` feeding `build` on another thread.
pub(super) struct Chunker {
    chunk: Chunk,
    out: SyncSender<Part>,
    /// Chunks the builder is done with, emptied, to fill again (fresh
    /// buffers per chunk cost a page fault per 4 KiB: 15% of a load).
    /// Shared by the chunkers split off this one: taken once per chunk.
    used: Arc<Mutex<Receiver<Chunk>>>,
    /// How many chunkers there are: the next one split off is numbered so.
    sources: Arc<AtomicUsize>,
    /// The most domains the table takes, and how many the store has (about):
    /// a table that will be partial reads on one thread, so which domains
    /// it holds does not depend on two threads' timing.
    max: usize,
    expected: usize,
}

/// Where `build` returns emptied chunks.
pub(super) struct Returns(SyncSender<Chunk>);

/// A sink and the chunks it will send, for `build`.
pub(super) fn channel(max: usize) -> (Chunker, Receiver<Part>, Returns) {
    let (out, parts) = sync_channel(CHUNKS_IN_FLIGHT);
    let (returns, used) = sync_channel(CHUNKS_IN_FLIGHT + 2);
    let chunker = Chunker {
        chunk: Chunk::default(),
        out,
        used: Arc::new(Mutex::new(used)),
        sources: Arc::new(AtomicUsize::new(1)),
        max,
        expected: 0,
    };
    (chunker, parts, Returns(returns))
}

impl Chunker {
    /// Sends the chunk so far; false when the builder has stopped.
    fn flush(&mut self) -> bool {
        if self.chunk.host_ends.is_empty() {
            return true;
        }
        let used = self
            .used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_recv();
        let next = Chunk {
            source: self.chunk.source,
            ..used.unwrap_or_default()
        };
        let chunk = std::mem::replace(&mut self.chunk, next);
        self.out.send(Part::Chunk(chunk)).is_ok()
    }
}

impl RouteSink for Chunker {
    fn expect(&mut self, routes: usize) {
        self.expected = routes;
        let _ = self.out.send(Part::Expect(routes));
    }

    fn grouped(&mut self) {
        let _ = self.out.send(Part::Grouped);
    }

    fn split(&mut self) -> Option<Box<dyn RouteSink>> {
        if self.expected > self.max {
            return None;
        }
        Some(Box::new(Chunker {
            chunk: Chunk {
                source: self.sources.fetch_add(1, Ordering::Relaxed),
                ..Chunk::default()
            },
            out: self.out.clone(),
            used: self.used.clone(),
            sources: self.sources.clone(),
            max: self.max,
            expected: self.expected,
        }))
    }

    fn route(&mut self, tenant: Option<&Tenant>, domain: &str) -> bool {
        let chunk = &mut self.chunk;
        if let Some(tenant) = tenant {
            record::encode(tenant, &mut chunk.records);
            chunk.record_ends.push(chunk.records.len() as u32);
        }
        chunk.new_tenant.push(tenant.is_some());
        chunk.hosts.extend_from_slice(domain.as_bytes());
        chunk.host_ends.push(chunk.hosts.len() as u32);
        chunk.host_ends.len() < CHUNK_ROUTES || self.flush()
    }
}

impl Drop for Chunker {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Builds from the chunks until every sink is dropped, or until `max`
/// domains are held and another comes (then it is partial: `true`).
/// `so_far` tells how many domains it holds as it goes.
pub(super) fn build(
    parts: Receiver<Part>,
    returns: Returns,
    max: usize,
    so_far: &AtomicU64,
) -> (BlockBuilder, bool) {
    let mut builder = BlockBuilder::default();
    let mut expected = 0;
    let mut grouped = false;
    // Each source's tenant of its last domain so far.
    let mut tenant_of_source: Vec<Option<u32>> = Vec::new();
    for part in parts {
        let mut chunk = match part {
            Part::Expect(routes) => {
                expected = routes.min(max);
                continue;
            }
            Part::Grouped => {
                grouped = true;
                continue;
            }
            Part::Chunk(chunk) => chunk,
        };
        if builder.len() == 0 && expected > 0 {
            // Sized once from the first chunk's averages (an over-estimate
            // costs address space, not memory: untouched pages stay unmapped).
            let per = |bytes: usize| bytes.div_ceil(chunk.host_ends.len()) + 1;
            builder.reserve(
                expected,
                expected * per(chunk.hosts.len()),
                expected * per(chunk.records.len()),
            );
        }
        if tenant_of_source.len() <= chunk.source {
            tenant_of_source.resize(chunk.source + 1, None);
        }
        let tenant = &mut tenant_of_source[chunk.source];
        let (mut host_start, mut record_start, mut records) = (0, 0, chunk.record_ends.iter());
        for (i, &host_end) in chunk.host_ends.iter().enumerate() {
            if chunk.new_tenant[i] {
                let end = records.next().map_or(record_start, |&e| e as usize);
                let encoded = &chunk.records[record_start..end];
                *tenant = Some(match grouped {
                    true => builder.add_encoded(encoded),
                    false => builder.intern_encoded(encoded),
                });
                record_start = end;
            }
            let host = &chunk.hosts[host_start..host_end as usize];
            host_start = host_end as usize;
            let Some(tenant) = *tenant else {
                continue; // a store's bug: a domain before any tenant
            };
            if builder.len() >= max {
                return (builder, true);
            }
            builder.push_encoded(host, tenant);
        }
        so_far.store(builder.len() as u64, Ordering::Relaxed);
        chunk.clear();
        let _ = returns.0.try_send(chunk);
    }
    (builder, false)
}
