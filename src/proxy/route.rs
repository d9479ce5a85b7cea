//! Resolve and decide phases, shared by both HTTP/1 engines (hyper's and the
//! lean one) so they cannot drift: normalise the Host, look it up, check it
//! against the TLS name, then forward, refuse or answer per the policy.

use std::sync::Arc;

use http::header::LOCATION;
use http::{HeaderValue, Response, StatusCode};

use super::decide::Decision;
use super::respond::{self, ProxyBody};
use super::{ConnInfo, Exchange, Proxy};
use crate::metrics::Outcome;
use crate::routing::{Resolution, RoutedTenant};
use crate::tenant::host::HostBuf;

impl Proxy {
    /// The tenant to forward to, or the answer to give instead (400 for a
    /// bad Host, 503 when the store is down, 421, 403, 404 or a redirect).
    pub(crate) async fn route(
        &self,
        raw_host: &[u8],
        conn: &ConnInfo,
        ex: &mut Exchange,
    ) -> Result<Arc<RoutedTenant>, Response<ProxyBody>> {
        // 1. resolve
        let host = match self.shared.router.normalize(raw_host) {
            Ok(host) => host,
            Err(reason) => {
                ex.outcome = Some(Outcome::BadRequest);
                return Err(respond::text(
                    StatusCode::BAD_REQUEST,
                    format!("bad request: {reason}\n"),
                ));
            }
        };
        let resolution = self.shared.router.resolve(host.as_str()).await;
        ex.host = Some(host);
        let resolution = match resolution {
            Ok(resolution) => resolution,
            Err(e) => {
                tracing::warn!(error = %e, "tenant lookup failed");
                ex.outcome = Some(Outcome::StoreError);
                return Err(respond::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "tenant lookup unavailable, try again\n",
                ));
            }
        };

        // SNI and Host must name the same tenant (HTTP/2 coalescing may reuse
        // a connection for another tenant's host): 421 lets the client retry.
        if let Some(sni) = &conn.sni {
            let host = ex.host.as_ref().map(HostBuf::as_str).unwrap_or_default();
            if sni.as_str() != host && self.misdirected(sni.as_str(), &resolution).await {
                ex.outcome = Some(Outcome::Misdirected);
                return Err(respond::text(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected request: the Host belongs to another tenant than the TLS name\n",
                ));
            }
        }

        // 2. decide, then hold (or refuse) a tenant under maintenance
        let tenant = self.answer(self.shared.policy.decide(&resolution), ex)?;
        self.maintenance(tenant, ex).await
    }

    /// The tenant to forward to, or the answer a decision gives instead.
    // The refusal is the response itself, as `route`'s (async, so unlinted):
    // boxing it would cost an allocation per refused request.
    #[allow(clippy::result_large_err)]
    pub(super) fn answer(
        &self,
        decision: Decision,
        ex: &mut Exchange,
    ) -> Result<Arc<RoutedTenant>, Response<ProxyBody>> {
        match decision {
            Decision::Forward(tenant) => {
                ex.tenant = Some(tenant.clone());
                Ok(tenant)
            }
            Decision::Suspended { tenant, status } => {
                ex.outcome = Some(Outcome::Suspended);
                let body = format!("tenant {} is suspended\n", tenant.tenant.id);
                ex.tenant = Some(tenant);
                Err(respond::text(status, body))
            }
            Decision::NotFound => {
                ex.outcome = Some(Outcome::UnknownHost);
                let host = ex.host.as_ref().map(HostBuf::as_str).unwrap_or_default();
                Err(respond::text(
                    StatusCode::NOT_FOUND,
                    format!("no tenant for hostname {host}\n"),
                ))
            }
            Decision::Redirect(location) => {
                ex.outcome = Some(Outcome::UnknownHost);
                let mut response = respond::text(
                    StatusCode::FOUND,
                    "no tenant for this hostname, redirecting\n",
                );
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                Err(response)
            }
        }
    }

    /// Whether the tenant of the TLS name differs from the Host's (a store
    /// failure counts as different: the client retries on a new connection).
    async fn misdirected(&self, sni: &str, by_host: &Resolution) -> bool {
        let Ok(by_sni) = self.shared.router.resolve(sni).await else {
            return true;
        };
        fn tenant_id(resolution: &Resolution) -> Option<&str> {
            match resolution {
                Resolution::Tenant(routed) => Some(&routed.tenant.id),
                Resolution::Unknown => None,
            }
        }
        tenant_id(&by_sni) != tenant_id(by_host)
    }
}
