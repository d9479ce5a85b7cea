//! Active health checks: one task per backend of every pool that configures
//! `health_check`, GETting its path on an interval. A backend is taken out
//! after `unhealthy_threshold` failures in a row and put back after
//! `healthy_threshold` passes. The tasks stop when their token is cancelled
//! (on reload the old pools' checks stop and the new ones start).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use super::{Backend, Pools};
use crate::config::HealthCheckConfig;

/// Starts the checks of every pool on the current runtime.
pub fn spawn_checks(pools: &Pools, stop: &CancellationToken) {
    for pool in pools.iter() {
        let Some(check) = &pool.health_check else {
            continue;
        };
        for backend in &pool.backends {
            let (backend, check, stop, pool) = (
                backend.clone(),
                check.clone(),
                stop.clone(),
                pool.name.clone(),
            );
            tokio::spawn(async move { check_loop(pool, backend, check, stop).await });
        }
    }
}

async fn check_loop(
    pool: String,
    backend: Arc<Backend>,
    check: HealthCheckConfig,
    stop: CancellationToken,
) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(check.timeout));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let Ok(uri) = format!("{}{}", backend.addr, check.path).parse::<http::Uri>() else {
        tracing::error!(%pool, backend = %backend.addr, path = %check.path, "health check URI is invalid");
        return;
    };
    let (mut passes, mut failures) = (0u32, 0u32);
    loop {
        tokio::select! {
            () = tokio::time::sleep(check.interval) => {}
            () = stop.cancelled() => return,
        }
        let probe = async {
            let response = client.get(uri.clone()).await.ok()?;
            let ok = response.status().is_success();
            // Drain the body so the connection can be reused by the next check.
            let _ = response.into_body().collect().await;
            Some(ok)
        };
        let ok = tokio::time::timeout(check.timeout, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(false);
        if ok {
            passes += 1;
            failures = 0;
            if passes >= check.healthy_threshold
                && (backend.set_healthy(true) | backend.lift_ejection())
            {
                tracing::info!(%pool, backend = %backend.addr, "backend passed its health checks, back in rotation");
            }
        } else {
            failures += 1;
            passes = 0;
            if failures >= check.unhealthy_threshold && backend.set_healthy(false) {
                tracing::warn!(%pool, backend = %backend.addr, failures, "backend failed its health checks, taken out");
            }
        }
    }
}
