//! The data path's worker threads: one listener per worker on one address
//! (`SO_REUSEPORT`), and per worker a thread with its own single-threaded
//! runtime serving its plain and TLS listeners, joined at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;

use super::ServerError;
use crate::proxy::listener::{self, ListenerSettings};
use crate::proxy::{DataPath, Proxy};
use crate::tls::TlsFront;

/// A worker thread: its result is how its listeners ended.
pub(super) type Worker = JoinHandle<std::io::Result<()>>;

/// Binds the first listener (resolving port 0) and the other workers' on the
/// same address; returns them and that address.
pub(super) fn bind_listeners(
    addr: SocketAddr,
    workers: usize,
) -> Result<(Vec<std::net::TcpListener>, SocketAddr), ServerError> {
    let first =
        listener::bind_reuseport(addr).map_err(|source| ServerError::Bind { addr, source })?;
    let bound = first
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(
            listener::bind_reuseport(bound).map_err(|source| ServerError::Bind {
                addr: bound,
                source,
            })?,
        );
    }
    Ok((all, bound))
}

/// Starts a worker per plain listener, each also serving its TLS listener
/// (if any) until `shutdown`.
pub(super) fn spawn(
    listeners: Vec<std::net::TcpListener>,
    tls_listeners: Vec<Option<std::net::TcpListener>>,
    data_path: &Arc<DataPath>,
    settings: ListenerSettings,
    shutdown: &CancellationToken,
    tls_front: Option<Arc<TlsFront>>,
) -> Result<Vec<Worker>, ServerError> {
    let mut threads = Vec::with_capacity(listeners.len());
    for ((i, listener), tls_listener) in listeners.into_iter().enumerate().zip(tls_listeners) {
        let data_path = data_path.clone();
        let shutdown = shutdown.clone();
        let tls_front = tls_front.clone();
        let thread = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || -> std::io::Result<()> {
                // One single-threaded runtime per worker: each owns its listener
                // and its backend connection pool, so threads share no locks.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let proxy = Proxy::new(data_path, i);
                    let plain =
                        listener::serve(listener, proxy.clone(), settings, None, shutdown.clone());
                    match (tls_listener, tls_front) {
                        (Some(tls_listener), Some(front)) => {
                            let tls = listener::serve(
                                tls_listener,
                                proxy,
                                settings,
                                Some(front),
                                shutdown,
                            );
                            tokio::try_join!(plain, tls).map(|_| ())
                        }
                        _ => plain.await,
                    }
                })
            })
            .map_err(ServerError::Runtime)?;
        threads.push(thread);
    }
    Ok(threads)
}

/// Waits (off the runtime) for every worker to finish draining.
pub(super) async fn join(threads: Vec<Worker>) {
    let joined = tokio::task::spawn_blocking(move || {
        for thread in threads {
            match thread.join() {
                Ok(Err(e)) => tracing::error!(error = %e, "worker failed"),
                Err(_) => tracing::error!("worker panicked"),
                Ok(Ok(())) => {}
            }
        }
    });
    let _ = joined.await;
}
