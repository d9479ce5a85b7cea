//! The immutable, compact part of the warm domain table: every domain's
//! normalised bytes in one arena, a 4-byte tenant index per domain, and an
//! open-addressing hash index of 4-byte slots over them. Tenants are kept
//! once each, in `record::Records`, and shared by all their domains.
//!
//! About 40 bytes per domain plus one record per tenant, against ~900 bytes
//! for a moka entry holding a `RoutedTenant` (see docs/domain-table.md).

use std::hash::BuildHasher;

use super::record::{Records, RecordsBuilder};
use crate::tenant::Tenant;

/// Marks an empty hash slot.
const EMPTY: u32 = u32::MAX;

/// The hash used for the index: fixed, so a block is the same for a given
/// input (randomised seeds buy nothing here: keys come from the registry,
/// and lookups of absent keys stop at the first empty slot).
fn hash(bytes: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5eed_7ab1e).hash_one(bytes)
}

/// An immutable set of domains, each with its tenant.
#[derive(Default)]
pub(super) struct Block {
    /// Every domain's bytes, back to back.
    hosts: Vec<u8>,
    /// Where domain `i` starts in `hosts`; `starts[i + 1]` is where it ends.
    starts: Vec<u32>,
    /// Domain `i`'s tenant, an index into `records`.
    tenant_of: Vec<u32>,
    /// Hash index: domain numbers, `EMPTY` where none; a power of two long.
    slots: Vec<u32>,
    pub(super) records: Records,
}

impl Block {
    /// Domains held.
    pub(super) fn len(&self) -> usize {
        self.tenant_of.len()
    }

    fn host(&self, i: usize) -> &[u8] {
        &self.hosts[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// The tenant record of `domain`, if the block holds it.
    pub(super) fn get(&self, domain: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = hash(domain) as usize & mask;
        loop {
            let i = self.slots[at];
            if i == EMPTY {
                return None;
            }
            if self.host(i as usize) == domain {
                return Some(self.tenant_of[i as usize]);
            }
            at = (at + 1) & mask;
        }
    }

    /// Every domain with its tenant record's index.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&[u8], u32)> + '_ {
        (0..self.len()).map(|i| (self.host(i), self.tenant_of[i]))
    }

    /// Bytes held on the heap (for the docs' and the bench's figures).
    pub(super) fn heap_bytes(&self) -> usize {
        self.hosts.capacity()
            + 4 * (self.starts.capacity() + self.tenant_of.capacity() + self.slots.capacity())
            + self.records.heap_bytes()
    }
}

/// Builds a block one domain at a time (each domain at most once).
#[derive(Default)]
pub(super) struct BlockBuilder {
    hosts: Vec<u8>,
    starts: Vec<u32>,
    tenant_of: Vec<u32>,
    records: RecordsBuilder,
}

impl BlockBuilder {
    pub(super) fn len(&self) -> usize {
        self.tenant_of.len()
    }

    pub(super) fn push(&mut self, domain: &[u8], tenant: &Tenant) {
        let record = self.records.intern(tenant);
        self.push_encoded(domain, record);
    }

    /// Adds a domain whose tenant is record `record` of `from` (a merge).
    pub(super) fn push_from(&mut self, domain: &[u8], from: &Records, record: u32) {
        let record = self.records.intern_bytes(from.bytes(record));
        self.push_encoded(domain, record);
    }

    /// Room for `domains` domains of `host_bytes` bytes in all, and
    /// `record_bytes` of tenant records, so nothing grows by copying.
    pub(super) fn reserve(&mut self, domains: usize, host_bytes: usize, record_bytes: usize) {
        self.hosts.reserve(host_bytes);
        self.starts.reserve(domains + 1);
        self.tenant_of.reserve(domains);
        self.records.reserve(domains, record_bytes);
    }

    /// The record index of an encoded tenant (`record::encode`), interned.
    pub(super) fn intern_encoded(&mut self, encoded: &[u8]) -> u32 {
        self.records.intern_bytes(encoded)
    }

    /// The record index of an encoded tenant known to be new (not interned).
    pub(super) fn add_encoded(&mut self, encoded: &[u8]) -> u32 {
        self.records.add_bytes(encoded)
    }

    /// Adds a domain whose tenant is record `record` of this builder.
    pub(super) fn push_encoded(&mut self, domain: &[u8], record: u32) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.hosts.extend_from_slice(domain);
        // Offsets are u32: 4 GiB of host bytes is ~150M domains, beyond any
        // `cache.table_max_domains` this table is meant for.
        self.starts.push(self.hosts.len() as u32);
        self.tenant_of.push(record);
    }

    /// The finished block, its vectors trimmed to size.
    pub(super) fn finish(mut self) -> Block {
        let n = self.tenant_of.len();
        // Load factor 1/2 to 2/3: short probes, 6 to 8 bytes per domain.
        let size = (n + n / 2).max(8).next_power_of_two();
        let mut slots = vec![EMPTY; size];
        let mask = size - 1;
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        for i in 0..n {
            let host = &self.hosts[self.starts[i] as usize..self.starts[i + 1] as usize];
            let mut at = hash(host) as usize & mask;
            while slots[at] != EMPTY {
                at = (at + 1) & mask;
            }
            slots[at] = i as u32;
        }
        self.hosts.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.tenant_of.shrink_to_fit();
        Block {
            hosts: self.hosts,
            starts: self.starts,
            tenant_of: self.tenant_of,
            slots,
            records: self.records.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tenant(id: &str) -> Tenant {
        Tenant {
            name: format!("Tenant {id}"),
            plan: Some("premium".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            ..Tenant::example(id)
        }
    }

    #[test]
    fn finds_every_domain_and_nothing_else() {
        let mut b = BlockBuilder::default();
        for i in 0..1000 {
            b.push(
                format!("d{i}.test").as_bytes(),
                &tenant(&format!("t{}", i % 10)),
            );
        }
        let block = b.finish();
        assert_eq!(block.len(), 1000);
        assert_eq!(block.records.len(), 10, "tenants are kept once each");
        for i in 0..1000 {
            let record = block.get(format!("d{i}.test").as_bytes()).unwrap();
            assert_eq!(block.records.tenant(record).id, format!("t{}", i % 10));
        }
        assert_eq!(block.get(b"d1000.test"), None);
        assert_eq!(block.get(b""), None);
        assert_eq!(BlockBuilder::default().finish().get(b"x.test"), None);
    }
}
