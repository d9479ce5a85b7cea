//! Connect step of the forward phase: how a connection to one backend is
//! opened, whatever its form: TCP, a Unix socket, or TLS over TCP. A pool has
//! one [`Connector`] (holding its rustls config, shared by every connection);
//! `Connector::connect` is the one way the data path and the health checks
//! reach a backend. [`PoolConnector`] adapts it to hyper-util's client, which
//! finds the backend again by the request URI's authority (`Backend::key`).
//! A request on a kept-alive connection never reaches the connector, so only
//! new connections pay for the connect histogram.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::Backend;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Where a backend's connections go, once its name is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
    /// TLS over TCP, verifying the certificate for `server_name` (also the SNI).
    Tls {
        addr: SocketAddr,
        server_name: ServerName<'static>,
    },
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The backend's certificate did not verify, or it refused ours.
    #[error("certificate error: {0}")]
    Certificate(String),
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// The pool's TLS settings could not be loaded at its last (re)build.
    #[error("TLS is not usable for this pool: {0}")]
    TlsConfig(Arc<str>),
}

/// An open connection to a backend, of whichever kind.
pub enum UpstreamStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl UpstreamStream {
    /// Whether ALPN chose HTTP/2 (only over TLS with `tls.h2`).
    pub fn is_h2(&self) -> bool {
        match self {
            UpstreamStream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
            _ => false,
        }
    }
}

/// Opens connections for one pool: its connect timeout and TLS settings.
/// Cheap to clone (one per worker's client).
#[derive(Clone)]
pub struct Connector {
    connect_timeout: Duration,
    /// `None` when the pool has no `https://` backend.
    tls: Option<Result<TlsConnector, Arc<str>>>,
}

impl Connector {
    /// `tls` is the pool's client config, or why it could not be built.
    pub fn new(
        connect_timeout: Duration,
        tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    ) -> Connector {
        Connector {
            connect_timeout,
            tls: tls.map(|r| r.map(TlsConnector::from).map_err(Arc::from)),
        }
    }

    /// Opens a new connection to `backend` and times it into the backend's
    /// connect histogram (the data path's way in).
    pub async fn connect(&self, backend: &Backend) -> Result<UpstreamStream, ConnectError> {
        let started = Instant::now();
        let stream = self.dial(&backend.target).await?;
        backend
            .series
            .connect_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(stream)
    }

    /// Opens a new connection to `target`, untimed (health checks).
    pub async fn dial(&self, target: &Target) -> Result<UpstreamStream, ConnectError> {
        let opening = async {
            match target {
                Target::Unix(path) => UnixStream::connect(path)
                    .await
                    .map(UpstreamStream::Unix)
                    .map_err(ConnectError::Io),
                Target::Tcp(addr) => tcp(*addr).await.map(UpstreamStream::Tcp),
                Target::Tls { addr, server_name } => {
                    let connector = match &self.tls {
                        Some(Ok(connector)) => connector,
                        Some(Err(why)) => return Err(ConnectError::TlsConfig(why.clone())),
                        None => return Err(ConnectError::TlsConfig("no TLS settings".into())),
                    };
                    let tcp = tcp(*addr).await?;
                    let tls = connector
                        .connect(server_name.clone(), tcp)
                        .await
                        .map_err(|e| match super::tls::certificate_error(&e) {
                            Some(cert) => ConnectError::Certificate(cert.to_string()),
                            None => ConnectError::Tls(e),
                        })?;
                    Ok(UpstreamStream::Tls(Box::new(tls)))
                }
            }
        };
        tokio::time::timeout(self.connect_timeout, opening)
            .await
            .unwrap_or(Err(ConnectError::Timeout(self.connect_timeout)))
    }
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, ConnectError> {
    let stream = TcpStream::connect(addr).await.map_err(ConnectError::Io)?;
    stream.set_nodelay(true).map_err(ConnectError::Io)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
    // Best effort, as hyper-util's connector: a socket without it still works.
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    Ok(stream)
}

/// hyper-util's connector for one pool: the request URI's authority names
/// the backend (`Backend::key`), the pool's [`Connector`] opens the way.
#[derive(Clone)]
pub struct PoolConnector {
    connector: Connector,
    /// The pool's backends, searched once per new connection (a handful).
    backends: Arc<[Arc<Backend>]>,
}

impl PoolConnector {
    pub fn new(connector: Connector, backends: Arc<[Arc<Backend>]>) -> PoolConnector {
        PoolConnector {
            connector,
            backends,
        }
    }
}

impl tower_service::Service<Uri> for PoolConnector {
    type Response = TokioIo<UpstreamStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let backend = uri
            .authority()
            .and_then(|a| self.backends.iter().find(|b| b.key == *a))
            .cloned();
        let connector = self.connector.clone();
        Box::pin(async move {
            let backend = backend.ok_or_else(|| format!("no backend for {uri}"))?;
            let stream = connector.connect(&backend).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        if self.is_h2() {
            Connected::new().negotiated_h2()
        } else {
            Connected::new()
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Tcp(s) => s.is_write_vectored(),
            UpstreamStream::Unix(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Unix(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn backend(addr: SocketAddr) -> Arc<Backend> {
        Arc::new(Backend::at(
            &format!("http://{addr}"),
            1,
            &Metrics::new(false, 0),
        ))
    }

    #[tokio::test]
    async fn each_new_connection_is_timed_for_its_backend() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = backend(listener.local_addr().unwrap());
        let connector = Connector::new(Duration::from_secs(1), None);
        let _first = connector.connect(&tcp).await.unwrap();
        let _second = connector.connect(&tcp).await.unwrap();
        assert_eq!(tcp.series.connect_seconds.get_sample_count(), 2);
        let _untimed = connector.dial(&tcp.target).await.unwrap();
        assert_eq!(tcp.series.connect_seconds.get_sample_count(), 2);
    }

    #[tokio::test]
    async fn unix_sockets_connect_and_tls_without_settings_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let connector = Connector::new(Duration::from_secs(1), None);
        let stream = connector.dial(&Target::Unix(path)).await.unwrap();
        assert!(matches!(stream, UpstreamStream::Unix(_)) && !stream.is_h2());
        let missing = connector
            .dial(&Target::Unix(dir.path().join("gone.sock")))
            .await;
        assert!(matches!(missing, Err(ConnectError::Io(_))));
        let tls = Target::Tls {
            addr: "127.0.0.1:1".parse().unwrap(),
            server_name: ServerName::try_from("app.test").unwrap(),
        };
        assert!(matches!(
            connector.dial(&tls).await,
            Err(ConnectError::TlsConfig(_))
        ));
    }
}
