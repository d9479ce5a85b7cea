//! Tenants of the warm domain table, each kept once however many domains it
//! has: its fields encoded back to back in one arena (id, name, schema when
//! it differs from the id, pool, plan, cluster, status, isolation, creation
//! time, and its own limits and maintenance as JSON when it has any),
//! interned by content while a block is built.

use std::hash::BuildHasher;

use crate::tenant::{Isolation, Maintenance, Tenant, TenantLimits, TenantStatus};

const SCHEMA_IS_ID: u8 = 1;
const HAS_POOL: u8 = 2;
const HAS_PLAN: u8 = 4;
const HAS_CLUSTER: u8 = 8;
const SUSPENDED: u8 = 16;
const HAS_CONTROLS: u8 = 32;

/// A tenant's own limits and maintenance, rare enough to keep as JSON.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Controls {
    limits: Option<TenantLimits>,
    maintenance: Option<Maintenance>,
}

/// Encoded tenants, addressed by index.
#[derive(Default)]
pub(crate) struct Records {
    bytes: Vec<u8>,
    /// Where record `i` starts; `starts[i + 1]` is where it ends.
    starts: Vec<u32>,
}

impl Records {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub(crate) fn bytes(&self, i: u32) -> &[u8] {
        let i = i as usize;
        &self.bytes[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// The tenant of record `i`, decoded.
    pub(crate) fn tenant(&self, i: u32) -> Tenant {
        decode(self.bytes(i))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + 4 * self.starts.capacity()
    }
}

/// Builds `Records`, storing a tenant seen again (same fields) only once.
#[derive(Default)]
pub(crate) struct RecordsBuilder {
    records: Records,
    /// Open-addressing index over the records by content: record numbers,
    /// `EMPTY` where none, a power of two long (4 bytes a slot, where a
    /// map of hash → index took 16 and more: 64 MB less at 10M tenants).
    index: Vec<u32>,
    scratch: Vec<u8>,
}

const EMPTY: u32 = u32::MAX;

fn content_hash(bytes: &[u8]) -> usize {
    foldhash::fast::FixedState::with_seed(0x007e_4a47).hash_one(bytes) as usize
}

impl RecordsBuilder {
    /// Room for `tenants` records of `bytes` bytes in all (the index grows
    /// when first used: tenants read grouped never need it).
    pub(crate) fn reserve(&mut self, tenants: usize, bytes: usize) {
        self.records.bytes.reserve(bytes);
        self.records.starts.reserve(tenants + 1);
    }

    pub(crate) fn intern(&mut self, tenant: &Tenant) -> u32 {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        encode(tenant, &mut scratch);
        let record = self.intern_bytes(&scratch);
        self.scratch = scratch;
        record
    }

    pub(crate) fn intern_bytes(&mut self, encoded: &[u8]) -> u32 {
        let held = self.records.starts.len().saturating_sub(1);
        // Load at most 2/3: short probes.
        if (held + 1) * 3 > self.index.len() * 2 {
            self.grow_index(held + 1);
        }
        let mask = self.index.len() - 1;
        let mut at = content_hash(encoded) & mask;
        loop {
            match self.index[at] {
                EMPTY => break,
                i if self.records.bytes(i) == encoded => return i,
                _ => at = (at + 1) & mask,
            }
        }
        let i = self.add_bytes(encoded);
        self.index[at] = i;
        i
    }

    /// Adds a record without looking for it first (the caller knows it is
    /// new); the index catches up when `intern_bytes` is next called.
    pub(crate) fn add_bytes(&mut self, encoded: &[u8]) -> u32 {
        let records = &mut self.records;
        if records.starts.is_empty() {
            records.starts.push(0);
        }
        records.bytes.extend_from_slice(encoded);
        records.starts.push(records.bytes.len() as u32);
        (records.starts.len() - 2) as u32
    }

    /// Re-indexes every record into a table for `tenants` at load 1/2 to 2/3.
    fn grow_index(&mut self, tenants: usize) {
        let size = (tenants + tenants / 2).max(16).next_power_of_two();
        if size <= self.index.len() {
            return;
        }
        let mut index = vec![EMPTY; size];
        let mask = size - 1;
        for i in 0..self.records.starts.len().saturating_sub(1) as u32 {
            let mut at = content_hash(self.records.bytes(i)) & mask;
            while index[at] != EMPTY {
                at = (at + 1) & mask;
            }
            index[at] = i;
        }
        self.index = index;
    }

    pub(crate) fn finish(mut self) -> Records {
        self.records.bytes.shrink_to_fit();
        self.records.starts.shrink_to_fit();
        self.records
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Ids, schemas, pools and names are validated far below 64 KiB; a longer
    // value from a foreign store is cut rather than corrupting the arena.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `t`'s record to `out`.
pub(crate) fn encode(t: &Tenant, out: &mut Vec<u8>) {
    let mut flags = 0;
    flags |= if t.schema == t.id { SCHEMA_IS_ID } else { 0 };
    flags |= if t.pool.is_some() { HAS_POOL } else { 0 };
    flags |= if t.plan.is_some() { HAS_PLAN } else { 0 };
    flags |= if t.cluster.is_some() { HAS_CLUSTER } else { 0 };
    let has_controls = t.limits.is_some() || t.maintenance.is_some();
    flags |= if has_controls { HAS_CONTROLS } else { 0 };
    flags |= if t.status == TenantStatus::Suspended {
        SUSPENDED
    } else {
        0
    };
    let isolation = Isolation::ALL
        .iter()
        .position(|i| *i == t.isolation)
        .unwrap_or(0) as u8;
    out.extend_from_slice(&[flags, isolation]);
    put_str(out, &t.id);
    put_str(out, &t.name);
    if t.schema != t.id {
        put_str(out, &t.schema);
    }
    for s in [&t.pool, &t.plan, &t.cluster].into_iter().flatten() {
        put_str(out, s);
    }
    put_str(out, &t.created_at);
    if has_controls {
        let controls = Controls {
            limits: t.limits.clone(),
            maintenance: t.maintenance.clone(),
        };
        put_str(out, &serde_json::to_string(&controls).unwrap_or_default());
    }
}

fn decode(bytes: &[u8]) -> Tenant {
    let (flags, isolation) = (bytes[0], bytes[1]);
    let mut at = 2;
    let mut next = || {
        let len = u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
        let s = String::from_utf8_lossy(&bytes[at + 2..at + 2 + len]).into_owned();
        at += 2 + len;
        s
    };
    let id = next();
    let name = next();
    let schema = if flags & SCHEMA_IS_ID != 0 {
        id.clone()
    } else {
        next()
    };
    let mut optional = |flag: u8| (flags & flag != 0).then(&mut next);
    let pool = optional(HAS_POOL);
    let plan = optional(HAS_PLAN);
    let cluster = optional(HAS_CLUSTER);
    let created_at = next();
    let controls: Controls = (flags & HAS_CONTROLS != 0)
        .then(next)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    Tenant {
        id,
        name,
        schema,
        isolation: Isolation::ALL[usize::from(isolation).min(3)],
        status: if flags & SUSPENDED != 0 {
            TenantStatus::Suspended
        } else {
            TenantStatus::Active
        },
        pool,
        plan,
        cluster,
        created_at,
        limits: controls.limits,
        maintenance: controls.maintenance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_comes_back_as_it_went_in() {
        let full = Tenant {
            id: "acme".into(),
            name: "Acme Corp".into(),
            schema: "acme_s".into(),
            isolation: Isolation::Database,
            status: TenantStatus::Suspended,
            pool: Some("big".into()),
            plan: None,
            cluster: Some("eu".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            limits: Some(TenantLimits {
                rate: Some("50/s".parse().unwrap()),
                ..TenantLimits::default()
            }),
            maintenance: Some(Maintenance {
                hold: Some(std::time::Duration::from_secs(10)),
                since: "2026-01-02T00:00:00Z".into(),
            }),
        };
        let plain = Tenant {
            schema: "acme".into(),
            isolation: Isolation::Cache,
            status: TenantStatus::Active,
            pool: None,
            plan: Some("free".into()),
            cluster: None,
            limits: None,
            maintenance: None,
            ..full.clone()
        };
        let mut b = RecordsBuilder::default();
        let (i, j) = (b.intern(&full), b.intern(&plain));
        assert_eq!(b.intern(&full), i, "interned once");
        let records = b.finish();
        assert_eq!(records.len(), 2);
        assert_eq!(records.tenant(i), full);
        assert_eq!(records.tenant(j), plain);
    }
}
