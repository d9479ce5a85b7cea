//! Usage metering's part of the log phase: what a finished request of a
//! known tenant adds to its hour (`traffic::usage`). Own answers and the
//! lean engine's relayed ones are counted when the log phase runs; a body
//! hyper streams from a backend is counted when it ends (or the client
//! goes away), by the [`Tally`] it carries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;

use super::{Exchange, Proxy};
use crate::routing::RoutedTenant;
use crate::traffic::usage::{Meter, Sample};
use crate::upstream::BodyProgress;

/// What metering has learnt of one exchange so far.
#[derive(Default)]
pub(crate) struct Metered {
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) upstream: Duration,
    /// Hyper's engine: the client's body as it is read.
    pub(crate) body: Option<Arc<BodyProgress>>,
    /// A streamed body counts the request when it ends, not the log phase.
    pub(crate) deferred: bool,
}

impl Metered {
    fn sample(&self, status: StatusCode) -> Sample {
        let read = self.body.as_ref().map_or(0, |b| b.bytes_read());
        Sample {
            status: status.as_u16(),
            bytes_in: self.bytes_in + read,
            bytes_out: self.bytes_out,
            upstream: self.upstream,
        }
    }
}

/// Counts a response body hyper streams from a backend, and adds the
/// request to its tenant's usage when the body is dropped.
pub(crate) struct Tally {
    meter: Arc<Meter>,
    worker: usize,
    tenant: Arc<RoutedTenant>,
    status: StatusCode,
    body: Option<Arc<BodyProgress>>,
    upstream_started: Instant,
    pub(crate) bytes_out: u64,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let metered = Metered {
            bytes_out: self.bytes_out,
            upstream: self.upstream_started.elapsed(),
            body: self.body.take(),
            ..Metered::default()
        };
        let sample = metered.sample(self.status);
        self.meter
            .record(self.worker, &self.tenant.tenant.id, &sample);
    }
}

impl Proxy {
    /// The log phase's metering: adds the request unless its body does so.
    pub(crate) fn meter(&self, ex: &Exchange, status: StatusCode) {
        let (Some(meter), Some(tenant)) = (&self.shared.usage, &ex.tenant) else {
            return;
        };
        if !ex.usage.deferred {
            meter.record(self.worker, &tenant.tenant.id, &ex.usage.sample(status));
        }
    }

    /// A tally for a streamed backend body (metering on), after which the
    /// log phase leaves the request to it.
    pub(crate) fn tally(
        &self,
        ex: &mut Exchange,
        tenant: &Arc<RoutedTenant>,
        status: StatusCode,
        upstream_started: Instant,
    ) -> Option<Box<Tally>> {
        let meter = self.shared.usage.as_ref()?;
        ex.usage.deferred = true;
        Some(Box::new(Tally {
            meter: meter.clone(),
            worker: self.worker,
            tenant: tenant.clone(),
            status,
            body: ex.usage.body.take(),
            upstream_started,
            bytes_out: 0,
        }))
    }
}
