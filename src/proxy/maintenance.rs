//! The maintenance check between decide and prepare: a tenant under
//! maintenance gets a 503 page with `Retry-After`, or with a hold its
//! requests wait (`traffic::maintenance`) and, once maintenance ends, are
//! decided again on the tenant as it is then (it may have been suspended or
//! removed meanwhile).

use std::sync::Arc;

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use prometheus::IntGauge;
use tokio::time::Instant;

use super::respond::{self, ProxyBody};
use super::{Exchange, Proxy};
use crate::metrics::Outcome;
use crate::routing::{Resolution, RoutedTenant};
use crate::tenant::host::HostBuf;
use crate::traffic::maintenance::{PAGE, RETRY_AFTER_SECS};

impl Proxy {
    /// The tenant to forward to once it is not (or no longer) under
    /// maintenance, or the answer to give instead.
    pub(crate) async fn maintenance(
        &self,
        tenant: Arc<RoutedTenant>,
        ex: &mut Exchange,
    ) -> Result<Arc<RoutedTenant>, Response<ProxyBody>> {
        let Some(maintenance) = &tenant.tenant.maintenance else {
            return Ok(tenant);
        };
        let Some(hold) = maintenance.hold else {
            return Err(unavailable(ex));
        };
        // Boxed: the hold's state stays out of every request's future.
        Box::pin(self.hold(tenant, hold, ex)).await
    }

    /// Waits up to `hold` for the tenant's maintenance to end, then decides
    /// again on the tenant as it is then; 503 if the hold runs out.
    async fn hold(
        &self,
        tenant: Arc<RoutedTenant>,
        hold: std::time::Duration,
        ex: &mut Exchange,
    ) -> Result<Arc<RoutedTenant>, Response<ProxyBody>> {
        let host = ex.host.as_ref().map(HostBuf::as_str).unwrap_or_default();
        let router = &self.shared.router;
        let ended = || async {
            match router.resolve(host).await {
                Ok(Resolution::Tenant(t)) if t.tenant.maintenance.is_some() => None,
                Ok(resolution) => Some(resolution),
                // The store is down: the tenant is as last known, held.
                Err(_) => None,
            }
        };
        let deadline = Instant::now() + hold;
        let ended = {
            // Counted down however the wait ends (the client may go away).
            let _held = Held::count(&self.shared.metrics.maintenance_held);
            self.shared
                .holds
                .wait(&tenant.tenant.id, deadline, ended)
                .await
        };
        match ended {
            Some(resolution) => self.answer(self.shared.policy.decide(&resolution), ex),
            None => Err(unavailable(ex)),
        }
    }
}

/// One held request in `tenant_gateway_maintenance_held_requests`.
struct Held<'a>(&'a IntGauge);

impl<'a> Held<'a> {
    fn count(gauge: &'a IntGauge) -> Held<'a> {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// 503 with `Retry-After` and the maintenance page.
fn unavailable(ex: &mut Exchange) -> Response<ProxyBody> {
    ex.outcome = Some(Outcome::Maintenance);
    let mut response = respond::text(StatusCode::SERVICE_UNAVAILABLE, PAGE);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}
