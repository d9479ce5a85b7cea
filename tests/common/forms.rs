//! Backends in the other forms apps live in: an echo backend on a Unix
//! socket, one behind TLS (a [`TestCa`] certificate, optionally requiring a
//! client certificate, recording the ALPN protocol of each connection), and
//! a DNS server whose A records a test sets (`pebble-challtestsrv`, from
//! Debian's pebble package). Each stops on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tempfile::TempDir;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

use super::echo::{serve_connection, Echo};
use super::free_port;
use super::pebble::{challtestsrv_bin, watched};
use super::tls::TestCa;

fn echo(name: &str) -> Echo {
    Echo {
        name: name.to_owned(),
        delay: Duration::ZERO,
        stop: CancellationToken::new(),
        busy: Default::default(),
    }
}

/// An echo backend on a Unix socket in a temporary directory.
pub struct UnixBackend {
    pub path: PathBuf,
    /// `unix:/…/app.sock`, as the gateway's pools take it.
    pub url: String,
    stop: CancellationToken,
    /// The directory of a socket made by [`UnixBackend::start`].
    _dir: Option<TempDir>,
}

impl UnixBackend {
    /// Serves on `app.sock` in a new temporary directory.
    pub fn start(name: &str) -> UnixBackend {
        let dir = tempfile::tempdir().expect("socket directory");
        let mut backend = UnixBackend::at(&dir.path().join("app.sock"), name);
        backend._dir = Some(dir);
        backend
    }

    /// Starts serving on `path` (e.g. one a gateway was told about earlier).
    pub fn at(path: &Path, name: &str) -> UnixBackend {
        let listener = UnixListener::bind(path).expect("bind the Unix socket");
        let echo = echo(name);
        let stop = echo.stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = echo.stop.cancelled() => return,
                };
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve_connection(stream, echo.clone()));
                }
            }
        });
        UnixBackend {
            path: path.to_owned(),
            url: format!("unix:{}", path.display()),
            stop,
            _dir: None,
        }
    }
}

impl Drop for UnixBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An HTTPS echo backend on 127.0.0.1 whose certificate names `name`.
pub struct TlsBackend {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT` (give the pool `tls.server_name`).
    pub url: String,
    /// The ALPN protocol of every connection it accepted, in order.
    pub alpn: Arc<Mutex<Vec<Option<String>>>>,
    stop: CancellationToken,
}

impl TlsBackend {
    /// Serves HTTP/1.1 and HTTP/2 (by ALPN) with a certificate from `ca` for
    /// `name`; with `client_ca`, only to clients with a certificate it signed.
    pub async fn start(ca: &TestCa, name: &str, client_ca: Option<&TestCa>) -> TlsBackend {
        let dir = tempfile::tempdir().expect("certificate directory");
        let (cert, key) = ca.leaf(&[name], dir.path(), "backend");
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
            .expect("read certificate")
            .collect::<Result<_, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_file(&key).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match client_ca {
            Some(client_ca) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(client_ca.roots()), provider)
                    .build()
                    .expect("client verifier"),
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TLS backend");
        let addr = listener.local_addr().expect("TLS backend address");
        let echo = echo(name);
        let stop = echo.stop.clone();
        let alpn = Arc::new(Mutex::new(Vec::new()));
        let seen = alpn.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = echo.stop.cancelled() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (acceptor, echo, seen) = (acceptor.clone(), echo.clone(), seen.clone());
                tokio::spawn(async move {
                    // A refused handshake (no or unknown client certificate) ends here.
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let protocol = tls
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned());
                    seen.lock().expect("alpn lock").push(protocol);
                    serve_connection(tls, echo).await;
                });
            }
        });
        TlsBackend {
            addr,
            url: format!("https://{addr}"),
            alpn,
            stop,
        }
    }

    /// The ALPN protocol of the last connection accepted.
    pub fn last_alpn(&self) -> Option<String> {
        self.alpn
            .lock()
            .expect("alpn lock")
            .last()
            .cloned()
            .flatten()
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `pebble-challtestsrv` as a DNS server with no default answer: a name
/// resolves to the A records a test sets, and nothing else.
pub struct TestDns {
    /// The DNS server (UDP and TCP), for `upstream.nameservers`.
    pub addr: SocketAddr,
    management: SocketAddr,
    child: Child,
}

impl TestDns {
    pub async fn start() -> TestDns {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let management = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = watched(&challtestsrv_bin())
            .args(["-dns01", &addr.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &management.to_string()])
            .args(["-defaultIPv4", "", "-defaultIPv6", ""])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn pebble-challtestsrv");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(management).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble-challtestsrv did not listen on {management}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestDns {
            addr,
            management,
            child,
        }
    }

    /// Makes `host` resolve to `addresses` (IPv4) from now on.
    pub async fn set_a(&self, host: &str, addresses: &[&str]) {
        let host = format!("{}.", host.trim_end_matches('.'));
        self.post("/clear-a", serde_json::json!({"host": host}))
            .await;
        self.post(
            "/add-a",
            serde_json::json!({"host": host, "addresses": addresses}),
        )
        .await;
    }

    async fn post(&self, path: &str, body: serde_json::Value) {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}{path}", self.management))
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("management request");
        let response = client
            .request(request)
            .await
            .expect("pebble-challtestsrv management API");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        // Closing the watchdog's stdin stops the server; then reap the shell.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
