//! A real `tenant-gateway serve` process: started on free ports with its own
//! temporary directory (store file, config, log), reloaded with SIGHUP after
//! a config rewrite, stopped with SIGTERM, restarted on the same store,
//! killed on drop.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;

use super::{Backend, BINARY, GATEWAY_ENV, START_TIMEOUT, TOKEN};

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
    /// Environment variables set for the process (e.g. a secret's `secret_env`).
    pub env: Vec<(String, String)>,
    /// `--listen` (default `127.0.0.1:0`, a free port).
    pub listen: Option<String>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            yaml_config: None,
            default_backends: Vec::new(),
            token: None,
            workers: 1,
            extra_args: Vec::new(),
            env: Vec::new(),
            listen: None,
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

    /// Sets an environment variable for the gateway process.
    pub fn env(mut self, name: &str, value: &str) -> GatewayOptions {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Listens for plain HTTP on this address (e.g. a port a test picked
    /// beforehand) instead of a free port.
    pub fn listen(mut self, addr: &str) -> GatewayOptions {
        self.listen = Some(addr.to_owned());
        self
    }

    pub fn workers(mut self, workers: usize) -> GatewayOptions {
        self.workers = workers;
        self
    }

    /// `--store URL`: a PostgreSQL registry instead of the temporary file.
    pub fn store(self, url: &str) -> GatewayOptions {
        self.args(["--store", url])
    }

    /// `--store-layout django-tenants`: read a django-tenants deployment's tables.
    pub fn django_layout(self) -> GatewayOptions {
        self.args(["--store-layout", "django-tenants"])
    }

    /// Further `serve` arguments.
    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> GatewayOptions {
        self.extra_args.extend(args.into_iter().map(str::to_owned));
        self
    }
}

/// Provisioning files in a temporary directory: ordered migrations and,
/// optionally, a default-content template, for `--migrations` and `--content`.
pub struct ProvisioningFiles {
    dir: TempDir,
    has_content: bool,
}

impl ProvisioningFiles {
    /// Writes `migrations` (file name, SQL) and the `content` template.
    pub fn new(migrations: &[(&str, &str)], content: Option<&str>) -> ProvisioningFiles {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations directory");
        for (name, sql) in migrations {
            std::fs::write(dir.path().join("migrations").join(name), sql).expect("migration");
        }
        if let Some(content) = content {
            std::fs::write(dir.path().join("content.sql"), content).expect("content template");
        }
        ProvisioningFiles {
            dir,
            has_content: content.is_some(),
        }
    }

    pub fn migrations_dir(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    /// `--migrations DIR [--content FILE]`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--migrations".to_owned(),
            self.migrations_dir().display().to_string(),
        ];
        if self.has_content {
            args.push("--content".to_owned());
            args.push(self.dir.path().join("content.sql").display().to_string());
        }
        args
    }
}

impl GatewayOptions {
    /// `--migrations` (and `--content`) from `files`.
    pub fn provisioning(self, files: &ProvisioningFiles) -> GatewayOptions {
        let args = files.args();
        self.args(args.iter().map(String::as_str))
    }
}

/// A config with one `default` pool of `backends` (YAML flow items: a URL,
/// or `{url: U, weight: N}`) and further pool `settings` (one `key: value`
/// line each, e.g. `balance: least_requests`), and a tenant `acme` on
/// `acme.test`.
pub fn pool_config(backends: &[String], settings: &[&str]) -> String {
    let mut yaml = format!(
        "pools:\n  default:\n    backends: [{}]\n",
        backends.join(", ")
    );
    for line in settings {
        yaml.push_str(&format!("    {line}\n"));
    }
    yaml.push_str("tenants:\n  - {id: acme, domains: [acme.test]}\n");
    yaml
}

/// A running `tenant-gateway serve` with its own temporary directory (store
/// file, config, log). Killed on drop.
pub struct Gateway {
    /// Data path address.
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// HTTPS data path, when the config has a `tls:` section.
    pub https_addr: Option<SocketAddr>,
    pub(super) options: GatewayOptions,
    child: Child,
    dir: TempDir,
    /// Reuses keep-alive connections (so requests stay on one worker).
    pub(super) client: Client<HttpConnector, Full<Bytes>>,
    /// Opens a new connection per request (so requests spread over workers).
    pub(super) one_shot: Client<HttpConnector, Full<Bytes>>,
}

impl Gateway {
    /// Starts the gateway and waits for its ready line.
    pub async fn start(options: GatewayOptions) -> Gateway {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (child, (addr, admin_addr, https_addr)) = spawn_gateway(&options, dir.path()).await;
        Gateway {
            addr,
            admin_addr,
            https_addr,
            options,
            child,
            dir,
            client: Client::builder(TokioExecutor::new()).build_http(),
            one_shot: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build_http(),
        }
    }

    /// Starts the gateway with one tenant, `acme` on `acme.test`: where most
    /// data-path tests begin.
    pub async fn with_acme(options: GatewayOptions) -> Gateway {
        let gw = Gateway::start(options).await;
        gw.create_tenant(
            serde_json::json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}),
        )
        .await;
        gw
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

    /// Sends SIGTERM, as an orchestrator would.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGHUP: the gateway re-reads its config file.
    pub fn sighup(&self) {
        self.signal("HUP");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Replaces the config file (for a reload, or the next restart).
    pub fn rewrite_config(&mut self, yaml: &str) {
        std::fs::write(self.dir.path().join("config.yaml"), with_engine(yaml))
            .expect("rewrite config");
        self.options.yaml_config = Some(yaml.to_owned());
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
        let (child, (addr, admin_addr, https_addr)) =
            spawn_gateway(&self.options, self.dir.path()).await;
        self.child = child;
        self.addr = addr;
        self.admin_addr = admin_addr;
        self.https_addr = https_addr;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The data, admin and (when configured) HTTPS addresses of a ready gateway.
type Addrs = (SocketAddr, SocketAddr, Option<SocketAddr>);

/// `GATEWAY_TEST_HTTP1=lean` (or `hyper`) runs every gateway of the suite on
/// that HTTP/1.1 engine, unless a test's config names one itself.
fn http1_engine() -> Option<String> {
    std::env::var("GATEWAY_TEST_HTTP1")
        .ok()
        .filter(|e| !e.is_empty())
}

/// `yaml` with the engine of [`http1_engine`] added (into the mapping, for
/// a config written as JSON).
fn with_engine(yaml: &str) -> String {
    match http1_engine() {
        Some(_) if yaml.contains("data_path") => yaml.to_owned(),
        Some(engine) => match yaml.trim_start().strip_prefix('{') {
            Some(rest) => {
                let comma = if rest.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                };
                format!("{{\"data_path\": {{\"http1\": \"{engine}\"}}{comma}{rest}")
            }
            None => format!("{yaml}\ndata_path:\n  http1: {engine}\n"),
        },
        None => yaml.to_owned(),
    }
}

/// Starts `serve` in `dir` and waits for its ready line; returns the child
/// and its addresses.
async fn spawn_gateway(options: &GatewayOptions, dir: &Path) -> (Child, Addrs) {
    let log_path = dir.join("gateway.log");
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("gateway log file");
    let mut cmd = Command::new(BINARY);
    cmd.arg("serve")
        .args([
            "--listen",
            options.listen.as_deref().unwrap_or("127.0.0.1:0"),
        ])
        .args(["--admin-listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(dir.join("gw.db"))
        .args(["--workers", &options.workers.to_string()]);
    let engine = http1_engine();
    if options.yaml_config.is_some() || engine.is_some() {
        let yaml = options.yaml_config.as_deref().unwrap_or_default();
        let path = dir.join("config.yaml");
        std::fs::write(&path, with_engine(yaml)).expect("write config");
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
    cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
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
        Some(addrs) => (child, addrs),
        None => {
            let _ = child.kill();
            panic!("unexpected ready line {line:?}; stderr:\n{}", log());
        }
    }
}

/// `tenant-gateway listening on http://A (admin http://B[, https://C], store …, N workers)`.
fn parse_ready_line(line: &str) -> Option<Addrs> {
    let rest = line.strip_prefix("tenant-gateway listening on http://")?;
    let (data, rest) = rest.split_once(' ')?;
    let admin = rest.strip_prefix("(admin http://")?.split(',').next()?;
    let https = match rest.split_once(", https://") {
        Some((_, tail)) => Some(tail.split(',').next()?.parse().ok()?),
        None => None,
    };
    Some((data.parse().ok()?, admin.parse().ok()?, https))
}
