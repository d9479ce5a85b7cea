//! The integration-test harness shared by every file in `tests/`: echo
//! backends on free loopback ports, the real `tenant-gateway` binary started
//! on free ports with its own temporary store, and small clients for the data
//! path, the admin API and raw (malformed) HTTP. Everything is torn down on
//! drop, so each test reads as "given these tenants, this request gets that
//! answer".
//!
//! - `backend`: echo backends (killed and restarted at will), and a URL
//!   nobody listens on
//! - `gateway`: start, SIGTERM, restart and wait for a gateway process
//! - `data_path`: requests with raw Host control, and what the backend saw
//! - `admin`: admin API calls, reloads and `/metrics` reads
//! - `browser`: the admin console driven in Chromium by a Playwright script
//! - `load`: a client loop recording every answer, for changes under load
//! - `command`: one-shot commands such as `check-config`
//! - `tls`: a throwaway CA for certificates, and an HTTPS client with its own SNI
//! - `forms`: echo backends on a Unix socket and behind TLS (mTLS too), and a
//!   DNS server whose A records a test sets
//! - `pebble`: a real ACME server (Debian's pebble) on free loopback ports
//! - `django`: the example Django + django-tenants site under gunicorn
//! - `webhook`: a receiver recording the JSON POSTed to it
//! - `commit_cutter`: a proxy in front of PostgreSQL that loses a COMMIT's answer
//! - `ports`: free loopback ports for servers told their port in advance
//! - `strict`: a strict recording backend (real sockets) for framing tests

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

mod admin;
mod backend;
mod browser;
mod command;
pub mod commit_cutter;
mod data_path;
pub mod django;
mod echo;
pub mod forms;
mod gateway;
mod load;
pub mod pebble;
pub mod pg;
mod ports;
pub mod strict;
pub mod tls;
mod webhook;

// Likewise, each binary leaves some of these re-exports unused.
#[allow(unused_imports)]
pub use {
    admin::api_error,
    backend::{dead_backend_url, Backend},
    command::{run_command, Finished},
    data_path::{Call, RawReply, Reply, Seen},
    echo::serve_echo,
    gateway::{pool_config, Gateway, GatewayOptions, ProvisioningFiles},
    load::{Load, Outcome},
    ports::free_port,
    webhook::Webhook,
};

use std::time::{Duration, Instant};

/// An admin token long enough for the gateway's 16-character minimum.
pub const TOKEN: &str = "integration-test-token-0123456789";

/// How long the gateway may take to print its ready line (or a command to exit).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long any single data-path or admin exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

const BINARY: &str = env!("CARGO_BIN_EXE_tenant-gateway");

/// Environment variables that would change the gateway under test.
const GATEWAY_ENV: [&str; 3] = [
    "TENANT_GATEWAY_ADMIN_TOKEN",
    "TENANT_GATEWAY_CONFIG",
    "RUST_LOG",
];

/// Polls `check` every 10 ms until it holds, for at most `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
