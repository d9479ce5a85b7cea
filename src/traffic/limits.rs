//! Rate limits and concurrency caps per tenant, per replica: a token bucket
//! (`rate`, `burst`) and a concurrency gate (`concurrency`, with a short FIFO
//! queue of `limits.queue_size` waiting up to `limits.queue_timeout`). A
//! tenant's limits are its own (`Tenant.limits`) field by field over its
//! plan's (`plans:`); both are read per request, so a reload or a tenant
//! update applies to the next one. A gateway where no plan has limits checks
//! one flag and the tenant's `Option` per request, and keeps no state.

mod bucket;
mod gate;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::{LimitsConfig, PlanConfig};
use crate::tenant::controls::{Rate, TenantLimits};
use crate::tenant::Tenant;
use bucket::Pace;
pub use gate::Queue;
use table::{Entry, Table};

/// What the config says, swapped whole on reload.
struct Policy {
    /// Plans that have limits (plans without any are left out).
    plans: HashMap<String, TenantLimits, foldhash::fast::RandomState>,
    queue: Queue,
}

/// The limits that hold for one tenant now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effective {
    pub rate: Option<Rate>,
    /// The bucket size: the tenant's, else its plan's, else one second of
    /// the rate (at least 1).
    pub burst: u32,
    pub concurrency: Option<u32>,
}

impl Effective {
    /// `own` field by field over `plan`.
    pub fn merge(plan: Option<&TenantLimits>, own: Option<&TenantLimits>) -> Effective {
        let pick = |field: fn(&TenantLimits) -> Option<u32>| {
            own.and_then(field).or_else(|| plan.and_then(field))
        };
        let rate = own
            .and_then(|l| l.rate)
            .or_else(|| plan.and_then(|l| l.rate));
        let burst = pick(|l| l.burst)
            .unwrap_or_else(|| rate.map_or(1, |r| r.requests.div_ceil(r.per.seconds()).max(1)));
        Effective {
            rate,
            burst: burst.max(1),
            concurrency: pick(|l| l.concurrency).map(|c| c.max(1)),
        }
    }

    fn is_unlimited(&self) -> bool {
        self.rate.is_none() && self.concurrency.is_none()
    }

    fn pace(&self) -> Option<Pace> {
        self.rate.map(|rate| Pace {
            interval: (u64::from(rate.per.seconds()) * 1_000_000_000 / u64::from(rate.requests))
                .max(1),
            burst: self.burst,
        })
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over the rate (429): the next token is there in `retry_after`.
    Rate { rate: Rate, retry_after: Duration },
    /// Beyond the concurrency cap after waiting in (or finding full) the
    /// queue (503).
    Concurrency { retry_after: Duration },
}

/// An admitted request of a limited tenant; holds its concurrency slot (if
/// it has a cap) until dropped, when the response is finished.
#[derive(Debug)]
pub struct Admitted {
    entry: Arc<Entry>,
    pace: Option<Pace>,
    slot: bool,
}

impl Admitted {
    /// Undoes the admission of a request that another engine will admit
    /// again (the lean engine's handover to hyper): the token goes back.
    pub fn give_back(self) {
        if let Some(pace) = self.pace {
            self.entry.bucket.give_back(pace);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.slot {
            self.entry.gate.leave();
        }
    }
}

/// Every tenant's limit state on this replica.
pub struct Limiter {
    policy: ArcSwap<Policy>,
    /// Some plan has limits: every routed tenant must be looked at.
    plans_limit: AtomicBool,
    table: Table,
    epoch: Instant,
}

impl Limiter {
    pub fn new(plans: &BTreeMap<String, PlanConfig>, limits: &LimitsConfig) -> Limiter {
        let limiter = Limiter {
            policy: ArcSwap::from_pointee(Policy {
                plans: HashMap::default(),
                queue: queue_of(limits),
            }),
            plans_limit: AtomicBool::new(false),
            table: Table::default(),
            epoch: Instant::now(),
        };
        limiter.reconfigure(plans, limits);
        limiter
    }

    /// Puts new plan limits and queue settings in force (a reload): the next
    /// request reads them; buckets and slots in use carry over.
    pub fn reconfigure(&self, plans: &BTreeMap<String, PlanConfig>, limits: &LimitsConfig) {
        let plans: HashMap<_, _, _> = plans
            .iter()
            .filter(|(_, plan)| !plan.limits.is_empty())
            .map(|(name, plan)| (name.clone(), plan.limits.clone()))
            .collect();
        self.plans_limit.store(!plans.is_empty(), Ordering::Relaxed);
        self.policy.store(Arc::new(Policy {
            plans,
            queue: queue_of(limits),
        }));
    }

    /// Whether `tenant` may have limits at all: the fast path's one check
    /// (a flag and an `Option`) when no plan has limits.
    #[inline]
    pub fn applies(&self, tenant: &Tenant) -> bool {
        self.plans_limit.load(Ordering::Relaxed) || tenant.limits.is_some()
    }

    /// The limits that hold for `tenant` now.
    pub fn effective(&self, tenant: &Tenant) -> Effective {
        let policy = self.policy.load();
        let plan = tenant.plan.as_deref().and_then(|p| policy.plans.get(p));
        Effective::merge(plan, tenant.limits.as_ref())
    }

    /// Admits a request of `tenant`, waiting for a concurrency slot when it
    /// is at its cap. `None`: the tenant has no limits (nothing to hold).
    pub async fn admit(&self, tenant: &Tenant) -> Result<Option<Admitted>, Refusal> {
        let (limits, queue) = {
            let policy = self.policy.load();
            let plan = tenant.plan.as_deref().and_then(|p| policy.plans.get(p));
            (Effective::merge(plan, tenant.limits.as_ref()), policy.queue)
        };
        if limits.is_unlimited() {
            return Ok(None);
        }
        let now = self.now();
        let now_secs = u32::try_from(now / 1_000_000_000).unwrap_or(u32::MAX);
        let entry = self
            .table
            .entry(&tenant.id, now_secs, |e| e.bucket.is_full(now));
        let pace = limits.pace();
        if let (Some(pace), Some(rate)) = (pace, limits.rate) {
            entry.bucket.take(now, pace).map_err(|wait| Refusal::Rate {
                rate,
                retry_after: Duration::from_nanos(wait),
            })?;
        }
        let mut admitted = Admitted {
            entry,
            pace,
            slot: false,
        };
        if let Some(cap) = limits.concurrency {
            if !admitted.entry.gate.enter(cap, queue).await {
                return Err(Refusal::Concurrency {
                    retry_after: queue.timeout,
                });
            }
            admitted.slot = true;
        }
        Ok(Some(admitted))
    }

    /// Tenants with state held now.
    pub fn tenants_held(&self) -> usize {
        self.table.len()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn queue_of(limits: &LimitsConfig) -> Queue {
    Queue {
        timeout: limits.queue_timeout,
        size: limits.queue_size,
    }
}

#[cfg(test)]
mod tests;
