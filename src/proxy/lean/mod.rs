//! The lean HTTP/1.1 engine: one task per client connection reads each
//! request head into a reused buffer, routes it through the phases both
//! engines share (`proxy::route`), writes the upstream head straight into
//! one output buffer and drives its own backend connection (`forward`).
//! Pipelined requests are answered in order, also after the client has
//! shut down its write side. What it does not serve itself (HTTP/2, upgrades,
//! `Expect`, HTTP/1.0, the plain side of HTTPS) it hands to hyper with the
//! bytes already read.

mod forward;
mod head;
mod pool;
mod relay;
mod rewind;

use std::io;
use std::time::{Duration, Instant};

use http::{Method, StatusCode, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::h1::{self, RequestFraming};
use super::respond;
use super::{ConnInfo, Exchange, Proxy};
use crate::metrics::Outcome;
pub use rewind::Rewind;

/// The client side of one connection: its socket and its read buffer.
pub(crate) struct Client<S> {
    io: S,
    /// Bytes read and not yet consumed; a request starts at index 0.
    buf: Vec<u8>,
    /// The client shut down its write side (or closed).
    eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Reads more into the buffer; 0 at the end of the client's stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.io.read_buf(&mut self.buf).await?;
        self.eof |= n == 0;
        Ok(n)
    }

    /// Drops the first `n` bytes (a finished request).
    fn consume(&mut self, n: usize) {
        if n >= self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..n);
        }
    }
}

/// What one request needs once its head's bytes are gone.
pub(crate) struct Facts {
    head_len: usize,
    framing: RequestFraming,
    keep_alive: bool,
    to_head: bool,
    idempotent: bool,
    /// `limits.max_request_body`.
    max_body: u64,
}

/// What to do with the request at the front of the buffer.
enum Step {
    /// Not a whole head yet.
    More,
    Refuse(h1::H1Error),
    Handover,
    Answer(http::Response<super::ProxyBody>, Facts),
    Forward(std::sync::Arc<crate::routing::RoutedTenant>, Facts),
}

/// How a connection ended: closed, or handed to hyper with what was read.
pub enum Ending<S> {
    Closed,
    Handover(Rewind<S>),
}

/// Serves one client connection until it closes, or hands it over.
pub async fn serve<S>(
    proxy: &Proxy,
    io: S,
    conn: &ConnInfo,
    header_read_timeout: Duration,
    shutdown: &CancellationToken,
) -> Ending<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Client {
        io,
        buf: Vec::with_capacity(16 * 1024),
        eof: false,
    };
    let mut out = Vec::with_capacity(4096);
    let limits = h1::Limits::default();
    let mut first = true;
    let mut deadline = Instant::now() + header_read_timeout;
    loop {
        // HTTP/2 with prior knowledge (h2c) starts with `PRI * HTTP/2.0`.
        if first && client.buf.starts_with(b"PRI ") {
            return Ending::Handover(Rewind::new(client.buf, client.io));
        }
        // Only a whole head (or one over the limit) starts a request.
        let whole = h1::has_blank_line(&client.buf);
        if !whole && client.buf.len() < limits.max_head {
            if !read_more(&mut client, &mut out, deadline, shutdown).await {
                return Ending::Closed;
            }
            continue;
        }
        let started = Instant::now();
        let mut ex = Exchange::default();
        out.clear();
        let step = if whole {
            let mut storage = h1::header_storage();
            match h1::parse_request(&client.buf, &mut storage, &limits) {
                Ok(None) => Step::More,
                Err(e) => Step::Refuse(e),
                Ok(Some(head)) => {
                    let plain_beside_https = proxy.shared.tls.is_some() && conn.proto == "http";
                    if head.upgrade.is_some()
                        || head.expect_continue
                        || head.minor_version == 0
                        || plain_beside_https
                        || !head.path.starts_with('/')
                    {
                        Step::Handover
                    } else {
                        let facts = Facts {
                            head_len: head.head_len,
                            framing: head.framing,
                            keep_alive: head.keep_alive && !shutdown.is_cancelled(),
                            to_head: head.method == "HEAD",
                            idempotent: matches!(
                                head.method,
                                "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
                            ),
                            max_body: proxy.shared.max_request_body,
                        };
                        proxy.shared.metrics.in_flight.inc();
                        match proxy.route(head.host, conn, &mut ex).await {
                            Err(answer) => Step::Answer(answer, facts),
                            // Backends spoken to over HTTP/2: hyper's client.
                            Ok(tenant) if speaks_h2(proxy, &tenant) => {
                                proxy.shared.metrics.in_flight.dec();
                                Step::Handover
                            }
                            Ok(tenant) => {
                                let signer = proxy.shared.signer.load();
                                ex.request_id = Some(head::upstream_request(
                                    &mut out,
                                    &head,
                                    &proxy.shared.names,
                                    &tenant,
                                    &conn.values,
                                    signer.as_deref(),
                                ));
                                Step::Forward(tenant, facts)
                            }
                        }
                    }
                }
            }
        } else {
            Step::Refuse(h1::H1Error::HeadTooLarge)
        };
        let logged = (proxy.shared.access_log
            && matches!(step, Step::Answer(..) | Step::Forward(..)))
        .then(|| request_line(&client.buf));

        let (status, keep_alive) = match step {
            Step::More => {
                if !read_more(&mut client, &mut out, deadline, shutdown).await {
                    return Ending::Closed;
                }
                continue;
            }
            Step::Handover => return Ending::Handover(Rewind::new(client.buf, client.io)),
            Step::Refuse(e) => {
                // Nothing after a refused head can be trusted: answer and close.
                ex.outcome = Some(Outcome::BadRequest);
                let answer = respond::text(e.status(), format!("bad request: {e}\n"));
                head::own_answer(&mut out, answer, None, false, false).await;
                let _ = client.io.write_all(&out).await;
                proxy.log(&ex, None, conn, e.status(), started);
                return Ending::Closed;
            }
            Step::Answer(answer, facts) => {
                let status = answer.status();
                // A body we did not read would be taken for the next request.
                let keep_alive = facts.keep_alive && facts.framing == RequestFraming::Length(0);
                head::own_answer(&mut out, answer, None, keep_alive, facts.to_head).await;
                let written = client.io.write_all(&out).await.is_ok();
                client.consume(facts.head_len);
                (status, keep_alive && written)
            }
            Step::Forward(tenant, facts) => {
                let done =
                    forward::forward(proxy, &tenant, &mut client, &mut out, &facts, &mut ex).await;
                (done.status, done.keep_alive)
            }
        };
        proxy.shared.metrics.in_flight.dec();
        proxy.log(&ex, logged, conn, status, started);
        if !keep_alive || (client.eof && !h1::has_blank_line(&client.buf)) {
            let _ = client.io.shutdown().await;
            return Ending::Closed;
        }
        first = false;
        deadline = Instant::now() + header_read_timeout;
    }
}

/// Reads more of a head that is not whole yet: `false` when the connection
/// is done (closed, idle at shutdown, or out of time: a started head gets 408).
async fn read_more<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    deadline: Instant,
    shutdown: &CancellationToken,
) -> bool {
    if client.eof {
        return false;
    }
    let idle = client.buf.is_empty();
    let read = tokio::select! {
        read = tokio::time::timeout_at(deadline.into(), client.fill()) => read,
        () = shutdown.cancelled(), if idle => return false,
    };
    match read {
        Ok(Ok(_)) => true,
        Ok(Err(_)) => false,
        Err(_) if idle => false,
        Err(_) => {
            let answer = respond::text(
                StatusCode::REQUEST_TIMEOUT,
                "request timeout: the request head did not arrive in time\n",
            );
            out.clear();
            head::own_answer(out, answer, None, false, false).await;
            let _ = client.io.write_all(out).await;
            false
        }
    }
}

/// Whether the tenant's pool talks HTTP/2 to its backends (`tls.h2`).
fn speaks_h2(proxy: &Proxy, tenant: &crate::routing::RoutedTenant) -> bool {
    let pools = proxy.shared.pools.load();
    pools
        .for_tenant(&tenant.tenant, &tenant.pool_slot)
        .is_some_and(|pool| pool.h2)
}

/// Method, target and version for the access log (only when it is on).
fn request_line(buf: &[u8]) -> (Method, Uri, Version) {
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let method = Method::from_bytes(parts.next().unwrap_or_default()).unwrap_or_default();
    let uri = parts
        .next()
        .and_then(|t| Uri::try_from(t).ok())
        .unwrap_or_default();
    (method, uri, Version::HTTP_11)
}
