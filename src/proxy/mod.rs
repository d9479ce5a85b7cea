//! The data path, one request at a time, in named phases:
//!
//! 1. resolve  — normalise Host, look it up through the routing cache
//! 2. decide   — forward, 404 / public / redirect, or refuse a suspended tenant;
//!    a tenant under maintenance: 503, or held until it ends
//! 3. prepare  — strip client tenant headers, inject ours, `X-Forwarded-*`
//! 4. pick     — the tenant's pool, then a backend in it
//! 5. forward  — send and stream the answer back (502 / 504 on failure)
//! 6. log      — one access line and the request metrics

pub mod decide;
pub mod h1;
pub mod headers;
pub mod lean;
pub mod listener;
mod maintenance;
mod respond;
mod route;
pub mod signing;
mod tls_front;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use http::header::{ALLOW, CONTENT_LENGTH, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::metrics::{Metrics, Outcome};
use crate::routing::{RoutedTenant, Router};
use crate::tenant::host::HostBuf;
use crate::tls::TlsFront;
use crate::upstream::{self, Forwarded, InFlight, Pools, UpstreamError};
use decide::Policy;
use headers::HeaderNames;
pub use respond::ProxyBody;

/// The methods a 405 says are served (all but CONNECT; others pass through).
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// What every data-path worker shares.
pub struct DataPath {
    pub router: Arc<Router>,
    /// Swapped whole on reload; a request keeps the pools it started with.
    pub pools: ArcSwap<Pools>,
    pub policy: Policy,
    pub names: HeaderNames,
    /// Signs the tenant headers (`headers.signing`); swapped on reload so
    /// keys rotate without a restart.
    pub signer: ArcSwapOption<signing::Signer>,
    pub metrics: Arc<Metrics>,
    pub max_request_body: u64,
    pub access_log: bool,
    /// The HTTPS side (certificates, ACME challenges, redirect); `None` keeps
    /// the plain-HTTP path free of any TLS check.
    pub tls: Option<Arc<TlsFront>>,
    /// Requests held while their tenant is under maintenance.
    pub holds: crate::traffic::maintenance::Holds,
}

/// One worker's proxy: the shared data path plus the worker's own client pool.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<DataPath>,
    /// This worker's index: selects its own backend connection pools.
    worker: usize,
}

/// Per-connection facts, computed once per connection rather than per request.
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer as the forwarding headers write it.
    values: headers::PeerValues,
    proto: &'static str,
    /// The TLS SNI name, normalised like a Host (TLS connections only).
    sni: Option<HostBuf>,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr) -> ConnInfo {
        ConnInfo {
            peer,
            values: headers::PeerValues::new(peer.ip(), "http"),
            proto: "http",
            sni: None,
        }
    }

    /// A connection that completed a TLS handshake for `sni`.
    pub fn tls(peer: SocketAddr, sni: Option<HostBuf>) -> ConnInfo {
        ConnInfo {
            proto: "https",
            values: headers::PeerValues::new(peer.ip(), "https"),
            sni,
            ..ConnInfo::new(peer)
        }
    }
}

/// What the log phase needs to know about a finished request.
#[derive(Default)]
pub(crate) struct Exchange {
    pub(crate) outcome: Option<Outcome>,
    pub(crate) host: Option<HostBuf>,
    pub(crate) tenant: Option<Arc<RoutedTenant>>,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) backend: Option<String>,
}

impl Exchange {
    /// Records a forward that failed as the client's fault or the backend's,
    /// for the log phase, and logs it at that fault's level (a client must
    /// not be able to fill the log).
    pub(crate) fn forward_failed(&mut self, e: &UpstreamError, tenant: &RoutedTenant) {
        if e.is_client_fault() {
            self.outcome = Some(Outcome::BadRequest);
            tracing::debug!(error = %e, tenant = %tenant.tenant.id, "request refused while forwarding");
        } else {
            self.outcome = Some(Outcome::UpstreamError);
            tracing::warn!(error = %e, tenant = %tenant.tenant.id, "forward failed");
        }
    }
}

impl Proxy {
    pub fn new(shared: Arc<DataPath>, worker: usize) -> Proxy {
        Proxy { shared, worker }
    }

    /// Serves one request through every phase and never fails: errors become
    /// short text answers with the right status.
    pub async fn handle(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<ProxyBody> {
        let started = Instant::now();
        let metrics = &self.shared.metrics;
        metrics.in_flight.inc();
        let logged = self
            .shared
            .access_log
            .then(|| (req.method().clone(), req.uri().clone(), req.version()));
        let mut exchange = Exchange::default();
        let mut response = self.process(req, conn, &mut exchange).await;
        if let Some(id) = &exchange.request_id {
            response
                .headers_mut()
                .insert(self.shared.names.request_id.clone(), id.clone());
        }
        metrics.in_flight.dec();
        self.log(&exchange, logged, conn, response.status(), started);
        response
    }

    async fn process(
        &self,
        mut req: Request<Incoming>,
        conn: &ConnInfo,
        ex: &mut Exchange,
    ) -> Response<ProxyBody> {
        // Refused before any phase: CONNECT, and a target that is no path.
        if req.method() == Method::CONNECT {
            // No tunnels to arbitrary places: the gateway serves tenants' sites.
            ex.outcome = Some(Outcome::BadRequest);
            let mut response = respond::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: CONNECT is not supported\n",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            return response;
        }
        if !req.uri().path().starts_with('/') {
            // `GET foo` or `OPTIONS *`: no path a backend could serve.
            ex.outcome = Some(Outcome::BadRequest);
            return respond::text(
                StatusCode::BAD_REQUEST,
                "bad request: the request target must be a path\n",
            );
        }
        // 0. plain HTTP beside HTTPS: ACME challenge answers, redirect
        if let Some(tls) = &self.shared.tls {
            if conn.proto == "http" {
                let answer = match tls_front::challenge_request(&req) {
                    Some(challenge) => tls_front::answer_challenge(tls, &challenge).await,
                    None => tls_front::redirect(tls, &req),
                };
                if let Some(response) = answer {
                    ex.outcome = Some(Outcome::HttpsRedirect);
                    return response;
                }
            }
        }

        // 1. resolve + 2. decide
        let raw_host = match raw_host(&req) {
            Ok(raw) => raw,
            Err(reason) => {
                ex.outcome = Some(Outcome::BadRequest);
                return respond::text(StatusCode::BAD_REQUEST, format!("bad request: {reason}\n"));
            }
        };
        let tenant = match self.route(raw_host, conn, ex).await {
            Ok(tenant) => tenant,
            Err(answer) => return answer,
        };
        ex.tenant = Some(tenant.clone());
        if declared_length(&req).is_some_and(|len| len > self.shared.max_request_body) {
            ex.outcome = Some(Outcome::BadRequest);
            return respond::text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }

        // 3. prepare
        let upgrade = headers::upgrade_protocol(req.headers());
        ex.request_id = Some(self.prepare(&mut req, &tenant, conn, upgrade.as_ref()));
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));

        // 4. pick + 5. forward (the pool picks again for each retry)
        let pools = self.shared.pools.load_full();
        let Some(pool) = pools.for_tenant(&tenant.tenant, &tenant.pool_slot) else {
            ex.outcome = Some(Outcome::UpstreamError);
            // A plan's pool always exists (config validation): what is
            // missing is the tenant's own pool, or `default`.
            let name = tenant
                .tenant
                .pool
                .as_deref()
                .unwrap_or(crate::upstream::DEFAULT_POOL)
                .to_owned();
            return respond::upstream_error(&UpstreamError::NoBackend(name));
        };
        let upstream_started = Instant::now();
        let limit = usize::try_from(self.shared.max_request_body).unwrap_or(usize::MAX);
        let result = upstream::forward(pool, self.worker, &tenant.tenant.id, req, limit).await;
        self.shared
            .metrics
            .upstream_seconds
            .observe(upstream_started.elapsed().as_secs_f64());
        match result {
            Ok(Forwarded {
                mut response,
                in_flight,
            }) => {
                ex.outcome = Some(Outcome::Routed);
                if self.shared.access_log {
                    ex.backend = Some(in_flight.backend().name.clone());
                }
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client_upgrade) = client_upgrade {
                        let upstream_upgrade = hyper::upgrade::on(&mut response);
                        tokio::spawn(tunnel(client_upgrade, upstream_upgrade, in_flight));
                        return response.map(|_| respond::empty());
                    }
                }
                headers::remove_hop_by_hop(response.headers_mut());
                response.map(|body| respond::streamed(body, in_flight))
            }
            Err(e) => {
                ex.forward_failed(&e, &tenant);
                respond::upstream_error(&e)
            }
        }
    }

    /// Rewrites the request for the backend and returns its request id.
    fn prepare(
        &self,
        req: &mut Request<Incoming>,
        tenant: &RoutedTenant,
        conn: &ConnInfo,
        upgrade: Option<&HeaderValue>,
    ) -> HeaderValue {
        let names = &self.shared.names;
        let authority = req.uri().authority().cloned();
        let path_only = req.uri().path_and_query().cloned().map(Uri::from);
        if let Some(uri) = path_only {
            *req.uri_mut() = uri;
        }
        *req.version_mut() = Version::HTTP_11;
        let headers = req.headers_mut();
        headers::remove_hop_by_hop(headers);
        if let Some(protocol) = upgrade {
            headers::keep_upgrade(headers, protocol);
        }
        headers::strip_tenant_headers(headers, names);
        headers::inject_tenant(headers, names, tenant);
        headers::ensure_host(headers, authority.as_ref());
        let host = headers.get(HOST).cloned();
        headers::set_forwarded(headers, &conn.values, host.as_ref());
        let request_id = headers::ensure_request_id(headers, names);
        if let Some(signer) = &*self.shared.signer.load() {
            headers::sign_tenant(headers, names, signer, tenant, &request_id);
        }
        request_id
    }

    pub(crate) fn log(
        &self,
        ex: &Exchange,
        logged: Option<(Method, Uri, Version)>,
        conn: &ConnInfo,
        status: StatusCode,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        let outcome = ex.outcome.unwrap_or(Outcome::BadRequest);
        let tenant = ex.tenant.as_ref().map(|t| t.tenant.id.as_str());
        self.shared
            .metrics
            .record_request(outcome, status.as_u16(), elapsed.as_secs_f64(), tenant);
        if let Some((method, uri, version)) = logged {
            tracing::info!(
                target: "access",
                client = %conn.peer.ip(),
                method = %method,
                path = uri.path(),
                version = ?version,
                host = ex.host.as_ref().map(HostBuf::as_str).unwrap_or("-"),
                tenant = tenant.unwrap_or("-"),
                status = status.as_u16(),
                outcome = outcome.as_str(),
                backend = ex.backend.as_deref().unwrap_or("-"),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                request_id = ex.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            );
        }
    }
}

/// Copies bytes both ways between an upgraded client connection (e.g. a
/// WebSocket) and the backend until either side closes.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, _in_flight: InFlight) {
    match tokio::try_join!(client, upstream) {
        Ok((client, upstream)) => {
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(error = %e, "upgraded connection ended");
            }
        }
        Err(e) => tracing::debug!(error = %e, "upgrade failed"),
    }
}

/// The Host header's bytes (or the HTTP/2 `:authority`), exactly one.
fn raw_host(req: &Request<Incoming>) -> Result<&[u8], &'static str> {
    let mut hosts = req.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err("more than one Host header"),
        (Some(host), None) => Ok(host.as_bytes()),
        (None, _) => match req.uri().authority() {
            Some(authority) => Ok(authority.as_str().as_bytes()),
            None => Err("missing Host header"),
        },
    }
}

fn declared_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
