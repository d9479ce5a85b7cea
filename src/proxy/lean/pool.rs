//! The lean path's backend connections: the one function that opens one,
//! and each worker's idle connections, kept per backend in a thread-local
//! map (a worker is one thread, so no lock; nothing here is held across an
//! `.await`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::task::{Context, Poll, Waker};

use crate::clock::now_ms;

use crate::upstream::{Backend, ConnectError, Pool, UpstreamError, UpstreamStream};

/// A backend connection and its read buffer.
pub struct Upstream {
    pub stream: UpstreamStream,
    pub buf: Vec<u8>,
    /// Taken from the idle pool (it may have been closed meanwhile).
    pub reused: bool,
    /// When it went idle, on the coarse clock (`clock::now_ms`): the idle
    /// timeout needs no finer precision, and the clock costs no system call.
    idle_since_ms: u64,
}

thread_local! {
    /// This worker's idle connections, by backend address (a fast hasher:
    /// the keys are our own backends' names, not a client's input).
    static IDLE: RefCell<HashMap<String, Vec<Upstream>, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// Opens a new connection to `backend` through the pool's connector (TCP,
/// Unix socket or TLS, timed into the backend's connect histogram).
pub async fn connect(pool: &Pool, backend: &Backend) -> Result<Upstream, UpstreamError> {
    let stream = pool.connector.connect(backend).await.map_err(|e| match e {
        ConnectError::Certificate(why) => UpstreamError::Certificate(backend.name.clone(), why),
        _ => UpstreamError::Connect(backend.name.clone()),
    })?;
    Ok(Upstream {
        stream,
        buf: Vec::with_capacity(8 * 1024),
        reused: false,
        idle_since_ms: now_ms(),
    })
}

/// An idle connection to `backend`, else a new one. With `check`, only one
/// that still looks open (one more `recv` per request: worth it when a
/// request cannot be replayed on a new connection after a failed write).
pub async fn take_or_connect(
    pool: &Pool,
    backend: &Backend,
    check: bool,
) -> Result<Upstream, UpstreamError> {
    let key = backend.name.as_str();
    while let Some(mut idle) = IDLE.with(|idle| idle.borrow_mut().get_mut(key)?.pop()) {
        let idle_ms = now_ms().saturating_sub(idle.idle_since_ms);
        if u128::from(idle_ms) < pool.idle_timeout.as_millis()
            && (!check || still_open(&idle.stream))
        {
            idle.reused = true;
            return Ok(idle);
        }
    }
    connect(pool, backend).await
}

/// Keeps a connection whose last exchange ended cleanly for the next request.
pub fn put_back(pool: &Pool, backend: &Backend, mut upstream: Upstream) {
    if !upstream.buf.is_empty() {
        return; // bytes nobody asked for: not a connection to reuse
    }
    upstream.idle_since_ms = now_ms();
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let key = backend.name.as_str();
        let list = match idle.get_mut(key) {
            Some(list) => list,
            None => idle.entry(key.to_owned()).or_default(),
        };
        if list.len() < pool.max_idle {
            list.push(upstream);
        }
    });
}

/// An idle connection must have nothing to read: readable means the
/// backend closed it (or sent bytes nobody asked for). A TLS connection is
/// taken as open (its socket may hold a close_notify or a ticket).
fn still_open(stream: &UpstreamStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    // Readiness can be left over from the last read: then ask the socket.
    let would_block = |r: std::io::Result<usize>| matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    match stream {
        UpstreamStream::Tcp(tcp) => match tcp.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Ok(())) => would_block(tcp.try_read(&mut [0u8; 1])),
            Poll::Ready(Err(_)) => false,
        },
        UpstreamStream::Unix(unix) => match unix.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Ok(())) => would_block(unix.try_read(&mut [0u8; 1])),
            Poll::Ready(Err(_)) => false,
        },
        UpstreamStream::Tls(_) => true,
    }
}
