//! Choosing a backend within a pool: weighted round robin, least in-flight
//! requests, or tenant affinity (consistent hashing with bounded load, so
//! one tenant's requests prefer the app server holding its warm caches).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::backend::Backend;
use crate::config::Balance;

/// Virtual nodes per unit of weight on the affinity ring.
const VNODES_PER_WEIGHT: u32 = 64;
/// Affinity yields to the next backend on the ring past this multiple of the
/// pool's mean load ("consistent hashing with bounded loads").
const LOAD_BOUND: f64 = 1.25;

pub enum Balancer {
    RoundRobin {
        schedule: Vec<usize>,
        next: AtomicUsize,
    },
    LeastRequests {
        next: AtomicUsize,
    },
    TenantAffinity {
        ring: Vec<(u64, usize)>,
    },
}

impl Balancer {
    pub fn new(kind: Balance, backends: &[Arc<Backend>]) -> Balancer {
        match kind {
            Balance::RoundRobin => Balancer::RoundRobin {
                schedule: smooth_schedule(backends),
                next: AtomicUsize::new(0),
            },
            Balance::LeastRequests => Balancer::LeastRequests {
                next: AtomicUsize::new(0),
            },
            Balance::TenantAffinity => {
                let mut ring: Vec<(u64, usize)> = backends
                    .iter()
                    .enumerate()
                    .flat_map(|(i, b)| {
                        (0..b.weight * VNODES_PER_WEIGHT)
                            .map(move |v| (fnv1a(format!("{}#{v}", b.name).as_bytes()), i))
                    })
                    .collect();
                ring.sort_unstable();
                Balancer::TenantAffinity { ring }
            }
        }
    }

    /// Picks a backend index that `usable` accepts, or `None`.
    pub fn pick(
        &self,
        backends: &[Arc<Backend>],
        tenant: &str,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        match self {
            Balancer::RoundRobin { schedule, next } => {
                let start = next.fetch_add(1, Ordering::Relaxed);
                (0..schedule.len())
                    .map(|k| schedule[(start + k) % schedule.len()])
                    .find(|&i| usable(i))
            }
            Balancer::LeastRequests { next } => {
                // Rotate the starting point so ties spread evenly.
                let start = next.fetch_add(1, Ordering::Relaxed);
                let n = backends.len();
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| usable(i))
                    .min_by(|&a, &b| {
                        let load = |i: usize| {
                            (backends[i].in_flight() as f64 + 1.0) / f64::from(backends[i].weight)
                        };
                        load(a).total_cmp(&load(b))
                    })
            }
            Balancer::TenantAffinity { ring } => {
                if ring.is_empty() {
                    return None;
                }
                let usable_count = (0..backends.len()).filter(|&i| usable(i)).count();
                if usable_count == 0 {
                    return None;
                }
                let total: usize = (0..backends.len())
                    .filter(|&i| usable(i))
                    .map(|i| backends[i].in_flight())
                    .sum();
                let bound = (LOAD_BOUND * (total + 1) as f64 / usable_count as f64).ceil() as usize;
                let start = ring.partition_point(|&(h, _)| h < fnv1a(tenant.as_bytes()));
                let walk = (0..ring.len()).map(|k| ring[(start + k) % ring.len()].1);
                let mut first_usable = None;
                for i in walk {
                    if usable(i) {
                        if backends[i].in_flight() < bound {
                            return Some(i);
                        }
                        first_usable.get_or_insert(i);
                    }
                }
                first_usable
            }
        }
    }
}

/// nginx's smooth weighted round robin, unrolled into one cycle so a pick is
/// one atomic increment: weights 5,1,1 give a,a,b,a,c,a,a rather than a×5,b,c.
fn smooth_schedule(backends: &[Arc<Backend>]) -> Vec<usize> {
    let total: i64 = backends.iter().map(|b| i64::from(b.weight)).sum();
    let mut current = vec![0i64; backends.len()];
    (0..total)
        .map(|_| {
            for (c, b) in current.iter_mut().zip(backends) {
                *c += i64::from(b.weight);
            }
            let best = (0..backends.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            best
        })
        .collect()
}

/// A stable hash (the same in every replica and every run): FNV-1a, then
/// murmur3's finaliser so similar ids (tenant1, tenant2) land far apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn backends(weights: &[u32]) -> Vec<Arc<Backend>> {
        let metrics = Metrics::new(false, 0);
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Arc::new(Backend::at(&format!("http://10.0.0.{i}:80"), w, &metrics)))
            .collect()
    }

    #[test]
    fn weighted_round_robin_interleaves_by_weight() {
        let b = backends(&[5, 1, 1]);
        let balancer = Balancer::new(Balance::RoundRobin, &b);
        let picks: Vec<usize> = (0..7)
            .map(|_| balancer.pick(&b, "t", |_| true).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let skipping: Vec<usize> = (0..4)
            .map(|_| balancer.pick(&b, "t", |i| i != 0).unwrap())
            .collect();
        assert!(skipping.iter().all(|&i| i != 0));
    }

    #[test]
    fn least_requests_prefers_the_idle_backend() {
        let b = backends(&[1, 1, 1]);
        let balancer = Balancer::new(Balance::LeastRequests, &b);
        let _busy = [b[0].start(), b[0].start(), b[2].start()];
        assert_eq!(balancer.pick(&b, "t", |_| true), Some(1));
    }

    #[test]
    fn affinity_keeps_a_tenant_on_one_backend_until_it_is_overloaded() {
        let b = backends(&[1, 1, 1]);
        let balancer = Balancer::new(Balance::TenantAffinity, &b);
        let home = balancer.pick(&b, "acme", |_| true).unwrap();
        for _ in 0..20 {
            assert_eq!(balancer.pick(&b, "acme", |_| true), Some(home));
        }
        let spread: std::collections::HashSet<usize> = (0..60)
            .filter_map(|i| balancer.pick(&b, &format!("tenant{i}"), |_| true))
            .collect();
        assert_eq!(spread.len(), 3, "tenants spread over the pool");
        let _load: Vec<_> = (0..10).map(|_| b[home].start()).collect();
        assert_ne!(
            balancer.pick(&b, "acme", |_| true),
            Some(home),
            "bounded load moves the overflow"
        );
        assert_ne!(balancer.pick(&b, "acme", |i| i != home), Some(home));
    }
}
