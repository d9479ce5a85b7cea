//! The integration-test harness shared by every file in `tests/`: echo
//! backends on free loopback ports, the real `tenant-gateway` binary started
//! on free ports with its own temporary store, and small clients for the data
//! path, the admin API and raw (malformed) HTTP. Everything is torn down on
//! drop, so each test reads as "given these tenants, this request gets that
//! answer".

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

mod echo;
pub use echo::serve_echo;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// An admin token long enough for the gateway's 16-character minimum.
pub const TOKEN: &str = "integration-test-token-0123456789";

/// How long the gateway may take to print its ready line.
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

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// An echo backend on a free loopback port, stopped on drop.
pub struct Backend {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, as the gateway's pools take it.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Starts an echo backend whose answers carry `"backend": name`.
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo backend");
        let addr = listener.local_addr().expect("echo backend address");
        let task = tokio::spawn(serve_echo(listener, name.to_owned()));
        Backend {
            addr,
            url: format!("http://{addr}"),
            task,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL of a port nobody listens on: connections to it are refused.
pub fn dead_backend_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("free port address");
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------
// Gateway options
// ---------------------------------------------------------------------------

/// How to start a gateway. `GatewayOptions::new()` is a one-worker gateway
/// with the built-in defaults, no backend and no admin token.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// YAML written to `config.yaml` and passed with `--config`.
    pub yaml_config: Option<String>,
    /// `--default-backend` URLs.
    pub default_backends: Vec<String>,
    /// Admin token passed through `TENANT_GATEWAY_ADMIN_TOKEN`.
    pub token: Option<String>,
    /// `--workers`.
    pub workers: usize,
    /// Further command-line arguments for `serve`.
    pub extra_args: Vec<String>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            yaml_config: None,
            default_backends: Vec::new(),
            token: None,
            workers: 1,
            extra_args: Vec::new(),
        }
    }
}

impl GatewayOptions {
    pub fn new() -> GatewayOptions {
        GatewayOptions::default()
    }

    /// Adds `backend` to the `default` pool.
    pub fn backend(mut self, backend: &Backend) -> GatewayOptions {
        self.default_backends.push(backend.url.clone());
        self
    }

    /// Adds a URL to the `default` pool.
    pub fn backend_url(mut self, url: &str) -> GatewayOptions {
        self.default_backends.push(url.to_owned());
        self
    }

    pub fn config(mut self, yaml: &str) -> GatewayOptions {
        self.yaml_config = Some(yaml.to_owned());
        self
    }

    /// Requires [`TOKEN`] on the admin API (given through the environment).
    pub fn with_token(mut self) -> GatewayOptions {
        self.token = Some(TOKEN.to_owned());
        self
    }

    pub fn workers(mut self, workers: usize) -> GatewayOptions {
        self.workers = workers;
        self
    }
}

// ---------------------------------------------------------------------------
// Gateway process
// ---------------------------------------------------------------------------

/// A running `tenant-gateway serve` with its own temporary directory (store
/// file, config, log). Killed on drop.
pub struct Gateway {
    /// Data path address.
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    options: GatewayOptions,
    child: Child,
    dir: TempDir,
    /// Reuses keep-alive connections (so requests stay on one worker).
    client: Client<HttpConnector, Full<Bytes>>,
    /// Opens a new connection per request (so requests spread over workers).
    one_shot: Client<HttpConnector, Full<Bytes>>,
}

impl Gateway {
    /// Starts the gateway and waits for its ready line.
    pub async fn start(options: GatewayOptions) -> Gateway {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (child, addr, admin_addr) = spawn_gateway(&options, dir.path()).await;
        Gateway {
            addr,
            admin_addr,
            options,
            child,
            dir,
            client: Client::builder(TokioExecutor::new()).build_http(),
            one_shot: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build_http(),
        }
    }

    /// The store file, kept across [`Gateway::restart`].
    pub fn data_file(&self) -> PathBuf {
        self.dir.path().join("gw.db")
    }

    /// Everything the gateway wrote to stderr so far (logs, access lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    // --- data path -------------------------------------------------------

    /// `GET path` with the given Host header.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        self.request(Method::GET, host, path).send().await
    }

    /// A data-path request to finish with headers and a body, then `.send()`.
    pub fn request(&self, method: Method, host: &str, path: &str) -> Call<'_> {
        Call {
            gateway: self,
            method,
            host: host.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            new_connection: false,
        }
    }

    /// The status `host` gets on every data-path worker (see
    /// [`Gateway::answers_everywhere`]).
    pub async fn status_everywhere(&self, host: &str) -> StatusCode {
        self.answers_everywhere(host).await.status
    }

    /// The tenant (`X-Tenant-ID` seen by the backend) that `host` reaches on
    /// every data-path worker; `None` if the request is not forwarded.
    pub async fn tenant_everywhere(&self, host: &str) -> Option<String> {
        let reply = self.answers_everywhere(host).await;
        serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|seen| seen["headers"]["x-tenant-id"].as_str().map(str::to_owned))
    }

    /// Sends `GET /` for `host` on several new connections, which the kernel
    /// spreads over the workers' listeners, checks that every answer has the
    /// same status and tenant (or body, when not forwarded), and returns one.
    pub async fn answers_everywhere(&self, host: &str) -> Reply {
        let summary = |reply: &Reply| match serde_json::from_slice::<Value>(&reply.body) {
            Ok(seen) => format!(
                "{} for tenant {}",
                reply.status, seen["headers"]["x-tenant-id"]
            ),
            Err(_) => format!("{} {:?}", reply.status, reply.text()),
        };
        let first = self
            .request(Method::GET, host, "/")
            .new_connection()
            .send()
            .await;
        for _ in 1..8 {
            let next = self
                .request(Method::GET, host, "/")
                .new_connection()
                .send()
                .await;
            assert_eq!(
                summary(&next),
                summary(&first),
                "Host: {host} got different answers on different connections"
            );
        }
        first
    }

    /// Writes `raw` bytes to a fresh data-path connection and reads the
    /// answer until the gateway closes it. For requests a well-behaved
    /// client cannot send (no Host, two Hosts, hand-made chunking). Send
    /// `Connection: close` (or HTTP/1.0) so the gateway ends the exchange.
    pub async fn raw(&self, raw: &[u8]) -> RawReply {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .expect("connect");
            stream.write_all(raw).await.expect("write raw request");
            let mut answer = Vec::new();
            // A reset after the answer is fine: we have what was sent.
            let _ = stream.read_to_end(&mut answer).await;
            answer
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("raw request timed out\n{}", self.log()));
        RawReply::parse(&answer)
    }

    /// Whether a new TCP connection to the data path is refused.
    pub async fn refuses_connections(&self) -> bool {
        tokio::net::TcpStream::connect(self.addr).await.is_err()
    }

    // --- admin API -------------------------------------------------------

    /// An admin request with the gateway's own token (if it has one).
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.options.token.clone();
        self.admin_as(token.as_deref(), method, path, body).await
    }

    /// An admin request presenting `token` (or no Authorization header).
    pub async fn admin_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let reply = self.admin_raw(token, method, path, body).await;
        let json = if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
                panic!("admin {path} answered non-JSON ({e}): {}", reply.text())
            })
        };
        (reply.status, json)
    }

    /// An admin request with a body sent as is (for malformed JSON).
    pub async fn admin_raw(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.admin_addr))
            .header("content-type", "application/json");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        self.exchange(req.body(Full::new(body)).expect("admin request"))
            .await
    }

    /// Creates a tenant and returns its JSON; panics unless the answer is 201.
    pub async fn create_tenant(&self, tenant: Value) -> Value {
        let (status, body) = self
            .admin(Method::POST, "/v1/tenants", Some(tenant.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating {tenant}: {body}");
        body
    }

    /// Routes `domain` to tenant `id`; panics unless the answer is 201.
    pub async fn add_domain(&self, id: &str, domain: &str) {
        let (status, body) = self
            .admin(
                Method::POST,
                &format!("/v1/tenants/{id}/domains"),
                Some(serde_json::json!({ "domain": domain })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "adding {domain} to {id}: {body}"
        );
    }

    /// Stops routing `domain`; panics unless the answer is 204.
    pub async fn remove_domain(&self, domain: &str) {
        let (status, body) = self
            .admin(Method::DELETE, &format!("/v1/domains/{domain}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "removing {domain}: {body}");
    }

    /// Sets a tenant's status (`active` or `suspended`); panics unless 200.
    pub async fn set_status(&self, id: &str, status: &str) {
        let (code, body) = self
            .admin(
                Method::PATCH,
                &format!("/v1/tenants/{id}"),
                Some(serde_json::json!({ "status": status })),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "setting {id} {status}: {body}");
    }

    /// The value of one Prometheus series, e.g.
    /// `tenant_gateway_requests_total{class="2xx",outcome="routed"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let reply = self
            .admin_raw(None, Method::GET, "/metrics", Bytes::new())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let text = reply.text();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{text}"))
    }

    // --- lifecycle -------------------------------------------------------

    /// Sends SIGTERM, as an orchestrator would.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit (without blocking the test's runtime,
    /// so backends in it keep answering while the gateway drains).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for gateway") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit within {timeout:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the gateway with SIGTERM and starts it again on the same store
    /// file (and config); the new process listens on new free ports.
    pub async fn restart(&mut self) {
        self.sigterm();
        let status = self.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.success(),
            "gateway exited with {status}\n{}",
            self.log()
        );
        let (child, addr, admin_addr) = spawn_gateway(&self.options, self.dir.path()).await;
        self.child = child;
        self.addr = addr;
        self.admin_addr = admin_addr;
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Reply {
        self.exchange_on(&self.client, req).await
    }

    async fn exchange_on(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        req: Request<Full<Bytes>>,
    ) -> Reply {
        let what = format!("{} {}", req.method(), req.uri());
        let exchange = async {
            let response = client
                .request(req)
                .await
                .unwrap_or_else(|e| panic!("{what} failed: {e:?}\n{}", self.log()));
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}"))
                .to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("{what} timed out\n{}", self.log()))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` in `dir` and waits for its ready line; returns the child
/// and its data and admin addresses.
async fn spawn_gateway(options: &GatewayOptions, dir: &Path) -> (Child, SocketAddr, SocketAddr) {
    let log_path = dir.join("gateway.log");
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("gateway log file");
    let mut cmd = Command::new(BINARY);
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(dir.join("gw.db"))
        .args(["--workers", &options.workers.to_string()]);
    if let Some(yaml) = &options.yaml_config {
        let path = dir.join("config.yaml");
        std::fs::write(&path, yaml).expect("write config");
        cmd.arg("--config").arg(path);
    }
    for url in &options.default_backends {
        cmd.args(["--default-backend", url]);
    }
    cmd.args(&options.extra_args);
    for var in GATEWAY_ENV {
        cmd.env_remove(var);
    }
    if let Some(token) = &options.token {
        cmd.env("TENANT_GATEWAY_ADMIN_TOKEN", token);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn tenant-gateway");

    // A thread reads stdout for the ready line, then keeps draining it. The
    // channel disconnects if the process exits before printing it.
    let stdout = child.stdout.take().expect("gateway stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let ready = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT))
        .await
        .expect("ready-line waiter");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let line = match ready {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "gateway did not become ready ({e}, {status:?}); stderr:\n{}",
                log()
            );
        }
    };
    match parse_ready_line(&line) {
        Some((addr, admin)) => (child, addr, admin),
        None => {
            let _ = child.kill();
            panic!("unexpected ready line {line:?}; stderr:\n{}", log());
        }
    }
}

/// `tenant-gateway listening on http://A (admin http://B, store …, N workers)`.
fn parse_ready_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("tenant-gateway listening on http://")?;
    let (data, rest) = rest.split_once(' ')?;
    let admin = rest.strip_prefix("(admin http://")?.split(',').next()?;
    Some((data.parse().ok()?, admin.parse().ok()?))
}

// ---------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------

/// A data-path request being built; see [`Gateway::request`].
pub struct Call<'a> {
    gateway: &'a Gateway,
    method: Method,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    new_connection: bool,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request on a connection of its own rather than a pooled one.
    pub fn new_connection(mut self) -> Self {
        self.new_connection = true;
        self
    }

    pub async fn send(self) -> Reply {
        let mut req = Request::builder()
            .method(self.method)
            .uri(format!("http://{}{}", self.gateway.addr, self.path))
            // The client keeps a Host header that is already there.
            .header("host", &self.host);
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(self.body)).expect("data-path request");
        let client = if self.new_connection {
            &self.gateway.one_shot
        } else {
            &self.gateway.client
        };
        self.gateway.exchange_on(client, req).await
    }
}

/// A whole HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// What the echo backend saw; panics (showing the answer) if the
    /// request did not reach an echo backend.
    pub fn seen(&self) -> Seen {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(json) if json.get("backend").is_some() => Seen(json),
            _ => panic!(
                "expected an echo backend's answer, got {} {:?}",
                self.status,
                self.text()
            ),
        }
    }
}

/// The request as an echo backend received it.
#[derive(Debug)]
pub struct Seen(pub Value);

impl Seen {
    /// The name the answering backend was started with.
    pub fn backend(&self) -> &str {
        self.0["backend"].as_str().unwrap_or_default()
    }

    pub fn path(&self) -> &str {
        self.0["path"].as_str().unwrap_or_default()
    }

    pub fn body_bytes(&self) -> u64 {
        self.0["body_bytes"].as_u64().unwrap_or_default()
    }

    /// A header the backend received (several values joined with ", ").
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"][name.to_ascii_lowercase()].as_str()
    }

    /// Names of every `x-tenant-*` header the backend received.
    pub fn tenant_header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0["headers"]
            .as_object()
            .map(|h| {
                h.keys()
                    .filter(|k| k.starts_with("x-tenant-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawReply {
    fn parse(answer: &[u8]) -> RawReply {
        let text = String::from_utf8_lossy(answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
        RawReply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// One-shot commands
// ---------------------------------------------------------------------------

/// A finished `tenant-gateway` command.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tenant-gateway ARGS` with `config` written to a temporary
/// `config.yaml` (its path replaces every `{config}` argument) and `env` set,
/// and waits up to 20 s for it to exit (a `serve` that keeps running is a
/// failure: it is killed and the test panics).
pub async fn run_command(args: &[&str], config: &str, env: &[(&str, &str)]) -> Finished {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(BINARY);
    for arg in args {
        match *arg {
            "{config}" => cmd.arg(&config_path),
            "{data}" => cmd.arg(dir.path().join("gw.db")),
            other => cmd.arg(other),
        };
    }
    for var in GATEWAY_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn tenant-gateway");
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tenant-gateway {args:?} did not exit; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

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
