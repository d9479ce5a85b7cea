//! Accept phase: one `SO_REUSEPORT` listener per worker thread, HTTP/1.1
//! keep-alive and HTTP/2 (cleartext, or over TLS when the listener has a
//! [`TlsFront`]) on each connection, a header-read timeout for slow clients,
//! and a graceful drain on shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lean::{self, Ending};
use super::{ConnInfo, Proxy, ProxyBody};
use crate::config::Http1Engine;
use crate::tls::TlsFront;

/// Binds a listening socket that other workers can bind too (`SO_REUSEPORT`),
/// so the kernel spreads connections across workers without a shared accept lock.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Settings of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ListenerSettings {
    pub header_read_timeout: Duration,
    pub drain_timeout: Duration,
    /// The engine of HTTP/1.1 connections (HTTP/2 always runs on hyper).
    pub http1: Http1Engine,
}

/// The HTTP/1.1 + HTTP/2 connection settings both listeners use: keep-alive,
/// and a header-read timeout so a client that never finishes its request
/// head cannot hold a connection forever.
pub fn http_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Serves connections until `shutdown` fires, then stops accepting and lets
/// in-flight requests finish for up to the drain timeout.
/// With `tls`, each connection first completes a TLS handshake (plain-HTTP
/// listeners take no TLS branch per request).
pub async fn serve(
    listener: std::net::TcpListener,
    proxy: Proxy,
    settings: ListenerSettings,
    tls: Option<Arc<TlsFront>>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let builder = Arc::new(http_builder(settings.header_read_timeout));
    accept_loop(
        listener,
        settings,
        shutdown,
        move |stream, peer, shutdown| {
            let (builder, proxy, tls) = (builder.clone(), proxy.clone(), tls.clone());
            async move {
                let lean = settings.http1 == Http1Engine::Lean;
                let Some(tls) = tls else {
                    let conn = ConnInfo::new(peer);
                    if lean {
                        return serve_lean(&builder, proxy, stream, conn, settings, shutdown).await;
                    }
                    let service = proxy_service(proxy, conn);
                    return drive(&builder, stream, service, peer, shutdown).await;
                };
                match tls.accept(stream).await {
                    Ok((stream, sni)) => {
                        let conn = ConnInfo::tls(peer, sni);
                        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                        if lean && !h2 {
                            return serve_lean(&builder, proxy, stream, conn, settings, shutdown)
                                .await;
                        }
                        let service = proxy_service(proxy, conn);
                        drive(&builder, stream, service, peer, shutdown).await;
                    }
                    Err(e) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                }
            }
        },
    )
    .await;
    Ok(())
}

/// Accepts connections and runs `handle` on each (given `shutdown`, to end
/// the connection gracefully) until `shutdown` fires, then stops accepting and waits up to the drain timeout for those open.
/// A connection whose client sends nothing within the header-read timeout
/// is closed unhandled: hyper's own timeout only starts with the first byte.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    settings: ListenerSettings,
    shutdown: CancellationToken,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, CancellationToken) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handle = Arc::new(handle);
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before its connection was taken: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) =>
            {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (handle, shutdown) = (handle.clone(), shutdown.clone());
        connections.spawn(async move {
            let mut first = [0u8; 1];
            let first_byte =
                tokio::time::timeout(settings.header_read_timeout, stream.peek(&mut first));
            let arrived = tokio::select! {
                peeked = first_byte => matches!(peeked, Ok(Ok(n)) if n > 0),
                () = shutdown.cancelled() => false,
            };
            if arrived {
                handle(stream, peer, shutdown).await;
            } else {
                tracing::debug!(%peer, "connection closed before its first byte");
            }
        });
    }

    drop(listener);
    connections.close();
    if tokio::time::timeout(settings.drain_timeout, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "drain timeout reached, closing remaining connections"
        );
    }
}

/// Serves a connection on the lean HTTP/1.1 path; what it hands over
/// (HTTP/2, upgrades and the like) goes on on hyper, from the same bytes.
async fn serve_lean<S>(
    builder: &auto::Builder<TokioExecutor>,
    proxy: Proxy,
    stream: S,
    conn: ConnInfo,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let ending = lean::serve(
        &proxy,
        stream,
        &conn,
        settings.header_read_timeout,
        &shutdown,
    )
    .await;
    if let Ending::Handover(stream) = ending {
        let service = proxy_service(proxy, conn);
        drive(builder, stream, service, peer, shutdown).await;
    }
}

/// The proxy as one connection's service.
fn proxy_service(
    proxy: Proxy,
    conn: ConnInfo,
) -> impl Service<
    Request<Incoming>,
    Response = Response<ProxyBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
> + Clone
       + Send
       + 'static {
    let state = Arc::new((proxy, conn));
    service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(state.0.handle(req, &state.1).await) }
    })
}

/// Serves HTTP with `service` on one accepted (plain or TLS) connection
/// until it closes, or until `shutdown` (then its in-flight requests finish).
pub async fn drive<S, Svc, B>(
    builder: &auto::Builder<TokioExecutor>,
    stream: S,
    service: Svc,
    peer: SocketAddr,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Svc: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
