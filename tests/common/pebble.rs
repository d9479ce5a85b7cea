//! A real ACME server for the tests: Debian's `pebble` (installed by
//! `scripts/test.sh`) on free loopback ports, with its own JSON config and
//! an HTTPS certificate from a throwaway [`TestCa`], without the random
//! validation sleeps (`PEBBLE_VA_NOSLEEP=1`) and without rejecting good
//! nonces (`PEBBLE_WFE_NONCEREJECT=0`: by default 5 % are, and instant-acme
//! retries a request only twice, so about one suite run in fifty lost an
//! order to three rejections in a row). Either validation always
//! succeeds (`PEBBLE_VA_ALWAYS_VALID=1`, no DNS needed), or pebble really
//! validates against the gateway's ports, resolving every name to 127.0.0.1
//! through `pebble-challtestsrv` as its DNS server. Stopped on drop, or by a
//! watchdog when the test binary dies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use tempfile::TempDir;

use super::free_port;
use super::tls::{https_get, TestCa};

/// Where the binary is: `TENANT_GATEWAY_TEST_PEBBLE`, else Debian's path.
fn pebble_bin() -> PathBuf {
    let bin = std::env::var_os("TENANT_GATEWAY_TEST_PEBBLE")
        .map_or_else(|| PathBuf::from("/usr/bin/pebble"), PathBuf::from);
    assert!(
        bin.is_file(),
        "{} not found: install pebble (apt-get install pebble, or ./scripts/test.sh)",
        bin.display()
    );
    bin
}

/// A running pebble.
pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// The PEM root the gateway trusts for the directory (`tls.acme.ca_root`).
    pub ca_root: PathBuf,
    /// The management API (`/roots/0`: pebble's issuing root).
    pub management: SocketAddr,
    api_ca: TestCa,
    child: Child,
    /// The DNS server of a validating pebble.
    dns: Option<Child>,
    dir: TempDir,
}

/// How pebble checks challenges.
enum Validation {
    AlwaysValid,
    /// Fetches HTTP-01 answers from this port and TLS-ALPN-01 ones from
    /// that port of 127.0.0.1 (every name resolves there).
    Real {
        http_port: u16,
        tls_port: u16,
    },
}

impl Pebble {
    /// Starts pebble; `validity` sets the lifetime of the certificates it
    /// issues. Every challenge passes without being checked.
    pub async fn start(validity: Option<Duration>) -> Pebble {
        Pebble::launch(validity, Validation::AlwaysValid).await
    }

    /// Starts pebble validating for real: HTTP-01 at `127.0.0.1:http_port`,
    /// TLS-ALPN-01 at `127.0.0.1:tls_port`, whatever the domain.
    pub async fn start_validating(http_port: u16, tls_port: u16) -> Pebble {
        Pebble::launch(
            None,
            Validation::Real {
                http_port,
                tls_port,
            },
        )
        .await
    }

    async fn launch(validity: Option<Duration>, validation: Validation) -> Pebble {
        let dir = tempfile::tempdir().expect("temporary directory");
        let api_ca = TestCa::new();
        let (cert, key) = api_ca.leaf(&["127.0.0.1", "localhost"], dir.path(), "pebble");
        let ca_root = dir.path().join("api-root.pem");
        std::fs::write(&ca_root, api_ca.root_pem()).expect("write pebble's API root");
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let management = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (http_port, tls_port) = match validation {
            Validation::AlwaysValid => (free_port(), free_port()),
            Validation::Real {
                http_port,
                tls_port,
            } => (http_port, tls_port),
        };
        let mut config = serde_json::json!({
            "pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": cert,
                "privateKey": key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        if let Some(validity) = validity {
            config["pebble"]["certificateValidityPeriod"] = validity.as_secs().into();
        }
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("pebble log");
        let mut command = watched(&pebble_bin());
        command.arg("-config").arg(&config_path);
        let mut dns = None;
        match validation {
            Validation::AlwaysValid => {
                command.env("PEBBLE_VA_ALWAYS_VALID", "1");
            }
            Validation::Real { .. } => {
                let dns_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
                dns = Some(start_dns(dns_addr, &log));
                command.arg("-dnsserver").arg(dns_addr.to_string());
            }
        }
        let child = command
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(dir.path())
            .stdout(log.try_clone().expect("pebble log"))
            .stderr(log)
            .spawn()
            .expect("spawn pebble");
        let pebble = Pebble {
            directory: format!("https://{listen}/dir"),
            ca_root,
            management,
            api_ca,
            child,
            dns,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        for addr in [listen, management] {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                assert!(
                    Instant::now() < deadline,
                    "pebble did not listen on {addr}:\n{}",
                    pebble.log()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        pebble
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The `tls.acme` section for a gateway using this pebble, with further
    /// `key: value` lines (e.g. `renew_before: 30days`).
    pub fn acme_yaml(&self, settings: &[&str]) -> String {
        let mut yaml = format!(
            "  acme:\n    directory: {}\n    ca_root: {}\n    contact: [\"mailto:ops@example.test\"]\n",
            self.directory,
            self.ca_root.display()
        );
        for line in settings {
            yaml.push_str(&format!("    {line}\n"));
        }
        yaml
    }

    /// The root pebble signs certificates under (regenerated per start), as
    /// a client's trust store.
    pub async fn issuing_roots(&self) -> RootCertStore {
        let host = self.management.to_string();
        let got = https_get(
            self.management,
            &self.api_ca.roots(),
            "localhost",
            &host,
            "/roots/0",
        )
        .await
        .expect("GET /roots/0 from pebble");
        assert!(
            got.reply.status.is_success(),
            "pebble /roots/0: {}",
            got.reply.status
        );
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(&got.reply.body) {
            roots
                .add(der.expect("pebble root PEM"))
                .expect("pebble root");
        }
        assert!(!roots.is_empty(), "no root from pebble");
        roots
    }
}

/// `pebble-challtestsrv` as a DNS server only, answering 127.0.0.1 for
/// every A query and nothing for AAAA (so pebble dials IPv4 loopback).
fn start_dns(addr: SocketAddr, log: &std::fs::File) -> Child {
    watched(&challtestsrv_bin())
        .args(["-dns01", &addr.to_string()])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{}", free_port())])
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .stdout(log.try_clone().expect("pebble log"))
        .stderr(log.try_clone().expect("pebble log"))
        .spawn()
        .expect("spawn pebble-challtestsrv")
}

/// Pebble's DNS test server, beside pebble.
pub fn challtestsrv_bin() -> PathBuf {
    pebble_bin().with_file_name("pebble-challtestsrv")
}

/// `program` run by a small watchdog shell whose stdin is a pipe held by
/// this process: when the pipe closes (drop, or the test binary dying in any
/// way, even SIGKILL) the shell kills the program, so no pebble outlives the
/// tests (as with the PostgreSQL server in `pg`). Arguments are appended.
pub fn watched(program: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#""$@" & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid""#)
        .arg("sh")
        .arg(program)
        .stdin(Stdio::piped());
    command
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.dns.as_mut()) {
            // Closing the watchdog's stdin stops the program; then reap the shell.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}
