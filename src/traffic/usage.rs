//! Usage metering for billing: each data-path worker adds every finished
//! request of a known tenant to its own map of tenant → hour → counts (a
//! mutex only the flusher ever contends, once a flush), and [`flush`] moves
//! the maps into the store. A drain empties the maps, so memory holds only
//! the tenants active since the last flush.

pub mod flush;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::store::{UsageCounts, UsageRow};

/// What one finished request adds to its tenant's hour.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub status: u16,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// From the forward's start to the response's end (zero when no
    /// backend was asked).
    pub upstream: Duration,
}

/// A tenant's counts by hour since the last drain: nearly always one hour,
/// two around the turn of an hour.
type Hours = Vec<(i64, UsageCounts)>;
type TenantMap = HashMap<Box<str>, Hours, foldhash::fast::RandomState>;

/// One worker's map, on its own cache lines so workers never share one.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<TenantMap>);

/// The counts of every worker since the last drain.
pub struct Meter {
    shards: Box<[Shard]>,
    /// Unix milliseconds at the coarse clock's zero: the hour is read from
    /// one relaxed atomic load instead of a clock call.
    epoch_unix_ms: i64,
}

impl Meter {
    /// A meter for `workers` data-path workers.
    pub fn new(workers: usize) -> Meter {
        let coarse = i64::try_from(crate::clock::now_ms()).unwrap_or(0);
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Meter {
            shards: (0..workers.max(1)).map(|_| Shard::default()).collect(),
            epoch_unix_ms: unix_ms - coarse,
        }
    }

    /// The start of the current hour, in Unix seconds (UTC).
    pub fn current_hour(&self) -> i64 {
        let now_ms = self.epoch_unix_ms + i64::try_from(crate::clock::now_ms()).unwrap_or(0);
        now_ms.div_euclid(3_600_000) * 3600
    }

    /// Adds one finished request of `tenant` on worker `worker`.
    pub fn record(&self, worker: usize, tenant: &str, sample: &Sample) {
        let hour = self.current_hour();
        let mut map = self.shard(worker);
        let hours = match map.get_mut(tenant) {
            Some(hours) => hours,
            // One hour's room: the common case, and no spare slots held.
            None => map
                .entry(tenant.into())
                .or_insert_with(|| Vec::with_capacity(1)),
        };
        let counts = match hours.iter_mut().rposition(|(h, _)| *h == hour) {
            Some(i) => &mut hours[i].1,
            None => {
                hours.push((hour, UsageCounts::default()));
                &mut hours.last_mut().expect("just pushed").1
            }
        };
        counts.requests += 1;
        counts.bytes_in += sample.bytes_in;
        counts.bytes_out += sample.bytes_out;
        counts.status_4xx += u64::from((400..500).contains(&sample.status));
        counts.status_5xx += u64::from((500..600).contains(&sample.status));
        counts.upstream_micros += u64::try_from(sample.upstream.as_micros()).unwrap_or(u64::MAX);
    }

    fn shard(&self, worker: usize) -> MutexGuard<'_, TenantMap> {
        let shard = &self.shards[worker % self.shards.len()];
        // A panic while counting leaves counts that are still counts.
        shard.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes every worker's counts (leaving the maps empty, their memory
    /// freed), one row per tenant and hour.
    pub fn drain(&self) -> Vec<UsageRow> {
        let mut merged: HashMap<(Box<str>, i64), UsageCounts, foldhash::fast::RandomState> =
            HashMap::default();
        for i in 0..self.shards.len() {
            let taken = std::mem::take(&mut *self.shard(i));
            for (tenant, hours) in taken {
                for (hour, counts) in hours {
                    merged
                        .entry((tenant.clone(), hour))
                        .or_default()
                        .add(&counts);
                }
            }
        }
        merged
            .into_iter()
            .map(|((tenant, hour), counts)| UsageRow {
                tenant: tenant.into(),
                hour,
                counts,
            })
            .collect()
    }

    /// How many tenants the workers hold counts for now.
    pub fn tenants_held(&self) -> usize {
        (0..self.shards.len()).map(|i| self.shard(i).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: u16) -> Sample {
        Sample {
            status,
            bytes_in: 10,
            bytes_out: 100,
            upstream: Duration::from_millis(2),
        }
    }

    #[test]
    fn counts_add_up_per_tenant_across_workers() {
        let meter = Meter::new(2);
        meter.record(0, "acme", &sample(200));
        meter.record(1, "acme", &sample(404));
        meter.record(1, "acme", &sample(502));
        meter.record(0, "globex", &sample(200));
        let mut rows = meter.drain();
        rows.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        assert_eq!(rows.len(), 2);
        let acme = &rows[0];
        assert_eq!(acme.tenant, "acme");
        assert_eq!(acme.hour, meter.current_hour());
        assert_eq!(acme.hour % 3600, 0);
        let want = UsageCounts {
            requests: 3,
            bytes_in: 30,
            bytes_out: 300,
            status_4xx: 1,
            status_5xx: 1,
            upstream_micros: 6000,
        };
        assert_eq!(acme.counts, want);
        assert_eq!(rows[1].counts.requests, 1);
    }

    #[test]
    fn a_drain_empties_the_maps_so_only_active_tenants_are_held() {
        let meter = Meter::new(4);
        for i in 0..100_000 {
            meter.record(i % 4, &format!("tenant-{i}"), &sample(200));
        }
        assert_eq!(meter.tenants_held(), 100_000);
        assert_eq!(meter.drain().len(), 100_000);
        assert_eq!(meter.tenants_held(), 0);
        meter.record(0, "tenant-7", &sample(200));
        assert_eq!(meter.tenants_held(), 1);
        let capacity: usize = (0..4).map(|i| meter.shard(i).capacity()).sum();
        assert!(capacity < 100, "the drained maps kept {capacity} slots");
    }

    #[test]
    fn the_current_hour_is_the_wall_clock_hour() {
        let meter = Meter::new(1);
        let wall = crate::clock::unix_now();
        let hour = meter.current_hour();
        assert!(
            (wall - hour) >= -1 && wall - hour < 3601,
            "{wall} vs {hour}"
        );
    }
}
