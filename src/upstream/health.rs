//! Active health checks: one task per backend of every pool that configures
//! `health_check`, GETting its path on an interval over a new connection
//! opened by the pool's connector (TCP, Unix and TLS backends alike). A
//! backend is taken out after `unhealthy_threshold` failures in a row and put
//! back after `healthy_threshold` passes; a new DNS-discovered address is
//! checked at once and let in by its first pass. The tasks stop when their token is cancelled
//! (on reload the old pools' checks stop and the new ones start).

use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;

use super::connect::Connector;
use super::{Backend, BackendAddr, Pools};
use crate::config::HealthCheckConfig;

/// Starts the checks of every pool on the current runtime.
pub fn spawn_checks(pools: &Pools, stop: &CancellationToken) {
    for pool in pools.iter() {
        let Some(check) = &pool.health_check else {
            continue;
        };
        for backend in &pool.backends {
            let (backend, check, stop, pool, connector) = (
                backend.clone(),
                check.clone(),
                stop.clone(),
                pool.name.clone(),
                pool.connector.clone(),
            );
            tokio::spawn(async move { check_loop(pool, backend, connector, check, stop).await });
        }
    }
}

async fn check_loop(
    pool: String,
    backend: Arc<Backend>,
    connector: Connector,
    check: HealthCheckConfig,
    stop: CancellationToken,
) {
    let host = match &backend.addr {
        BackendAddr::Unix(_) => HeaderValue::from_static("localhost"),
        BackendAddr::Net { host, port, .. } => {
            match HeaderValue::try_from(format!("{host}:{port}")) {
                Ok(host) => host,
                Err(_) => return,
            }
        }
    };
    let (mut passes, mut failures) = (0u32, 0u32);
    // A new address is checked at once: it takes no traffic until it passes.
    let mut wait = !backend.is_pending();
    loop {
        if wait {
            tokio::select! {
                () = tokio::time::sleep(check.interval) => {}
                () = stop.cancelled() => return,
            }
        }
        wait = true;
        let ok = tokio::time::timeout(
            check.timeout,
            probe(&connector, &backend, &host, &check.path),
        )
        .await
        .unwrap_or(false);
        if ok {
            passes += 1;
            failures = 0;
            if backend.checked() {
                backend.set_healthy(true);
                tracing::info!(%pool, backend = %backend.name, "new backend address passed its first health check, in rotation");
            } else if passes >= check.healthy_threshold
                && (backend.set_healthy(true) | backend.lift_ejection())
            {
                tracing::info!(%pool, backend = %backend.name, "backend passed its health checks, back in rotation");
            }
        } else {
            failures += 1;
            passes = 0;
            if failures >= check.unhealthy_threshold && backend.set_healthy(false) {
                tracing::warn!(%pool, backend = %backend.name, failures, "backend failed its health checks, taken out");
            }
        }
    }
}

/// `GET path` on a new connection (of the backend's kind: TCP, Unix or TLS,
/// HTTP/2 if ALPN chose it): whether the answer is a 2xx.
async fn probe(connector: &Connector, backend: &Backend, host: &HeaderValue, path: &str) -> bool {
    let Ok(stream) = connector.dial(&backend.target).await else {
        return false;
    };
    let h2 = stream.is_h2();
    let io = TokioIo::new(stream);
    let mut request = Request::new(Empty::<Bytes>::new());
    let response = if h2 {
        let Ok(uri) = format!("https://{}{path}", host.to_str().unwrap_or("localhost")).parse()
        else {
            return false;
        };
        *request.uri_mut() = uri;
        let Ok((mut send, conn)) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await
        else {
            return false;
        };
        tokio::spawn(conn);
        send.send_request(request).await
    } else {
        let Ok(uri) = path.parse() else {
            return false;
        };
        *request.uri_mut() = uri;
        request.headers_mut().insert(HOST, host.clone());
        let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(io).await else {
            return false;
        };
        tokio::spawn(conn);
        send.send_request(request).await
    };
    let Ok(response) = response else {
        return false;
    };
    let ok = response.status().is_success();
    let _ = response.into_body().collect().await;
    ok
}
