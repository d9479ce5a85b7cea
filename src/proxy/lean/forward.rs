//! Pick, forward and stream phases of the lean path: a backend of the
//! tenant's pool (retried as `Pool::retry_after` allows), the upstream head
//! and the client's body sent on this worker's own connection, and the
//! response streamed back by Content-Length, chunks or until close, with
//! backpressure, under the pool's timeouts.

use std::time::Instant;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::h1::{Chunked, Piece, RequestFraming};
use super::super::respond;
use super::pool::{self, Upstream};
use super::relay::{read_head, relay, Head};
use super::{head, Client, Facts};
use crate::metrics::Outcome;
use crate::proxy::{Exchange, Proxy};
use crate::routing::RoutedTenant;
use crate::upstream::{Pool, UpstreamError, DEFAULT_POOL};

/// How a forwarded request ended, for the log and the connection.
pub(super) struct Done {
    pub status: StatusCode,
    pub keep_alive: bool,
}

/// What has happened so far, read after a timeout dropped the attempts.
#[derive(Default)]
pub(super) struct Progress {
    /// The request body was read whole (the next request can follow).
    pub body_done: bool,
    /// Response bytes went to the client: no other answer can be given.
    pub responded: bool,
    /// Waiting on the client's body (a timeout is then the client's fault).
    waiting_on_client: bool,
    pub status: Option<StatusCode>,
    pub keep_alive: bool,
}

/// Forwards the request whose upstream head is in `out` (its client head
/// still at the front of the client's buffer) and answers the client.
pub(super) async fn forward<S: AsyncRead + AsyncWrite + Unpin>(
    proxy: &Proxy,
    tenant: &RoutedTenant,
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    facts: &Facts,
    ex: &mut Exchange,
) -> Done {
    client.consume(facts.head_len);
    let mut progress = Progress {
        body_done: facts.framing == RequestFraming::Length(0),
        ..Progress::default()
    };
    let pools = proxy.shared.pools.load_full();
    let max = proxy.shared.max_request_body;
    let result = match pools.for_tenant(&tenant.tenant, &tenant.pool_slot) {
        None => {
            let name = tenant.tenant.pool.as_deref().unwrap_or(DEFAULT_POOL);
            Err(UpstreamError::NoBackend(name.to_owned()))
        }
        Some(_) if matches!(facts.framing, RequestFraming::Length(n) if n > max) => {
            Err(UpstreamError::BodyTooLarge)
        }
        Some(pool) => {
            let started = Instant::now();
            let attempts = attempts(
                proxy,
                pool,
                tenant,
                client,
                out,
                facts,
                ex,
                &mut progress,
                started,
            );
            let result = match pool.total_timeout {
                Some(total) => tokio::time::timeout(total, attempts)
                    .await
                    .unwrap_or_else(|_| Err(UpstreamError::Timeout(format!("pool {}", pool.name)))),
                None => attempts.await,
            };
            let metrics = &proxy.shared.metrics;
            metrics
                .upstream_seconds
                .observe(started.elapsed().as_secs_f64());
            result
        }
    };
    match result {
        Ok(()) => Done {
            status: progress.status.unwrap_or(StatusCode::BAD_GATEWAY),
            keep_alive: progress.keep_alive && progress.body_done,
        },
        Err(e) if progress.responded => {
            tracing::debug!(error = %e, "response broke off");
            Done {
                status: progress.status.unwrap_or(StatusCode::BAD_GATEWAY),
                keep_alive: false,
            }
        }
        Err(mut e) => {
            if matches!(e, UpstreamError::Timeout(_)) && progress.waiting_on_client {
                e = UpstreamError::ClientTimeout;
            }
            ex.forward_failed(&e, tenant);
            let answer = respond::upstream_error(&e);
            let status = answer.status();
            let keep_alive = facts.keep_alive && progress.body_done;
            let name = proxy.shared.names.request_id.as_str().as_bytes();
            let id = ex.request_id.as_ref().map(|v| (name, v.as_bytes()));
            out.clear();
            head::own_answer(out, answer, id, keep_alive, facts.to_head).await;
            let written = client.io.write_all(out).await.is_ok();
            Done {
                status,
                keep_alive: keep_alive && written,
            }
        }
    }
}

/// Tries backends until one answers, or retrying is not allowed.
#[allow(clippy::too_many_arguments)]
async fn attempts<S: AsyncRead + AsyncWrite + Unpin>(
    proxy: &Proxy,
    pool: &Pool,
    tenant: &RoutedTenant,
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    facts: &Facts,
    ex: &mut Exchange,
    progress: &mut Progress,
    first_started: Instant,
) -> Result<(), UpstreamError> {
    pool.count_request();
    let replayable = facts.framing == RequestFraming::Length(0) && pool.may_retry();
    let (mut tried, mut retries, mut last_error) = (0u64, 0, None);
    loop {
        let Some(index) = pool.pick(&tenant.tenant.id, tried) else {
            return Err(last_error.unwrap_or_else(|| UpstreamError::NoBackend(pool.name.clone())));
        };
        let backend = &pool.backends[index];
        let in_flight = backend.start();
        // The first attempt starts with the forward (one clock read less).
        let started = if retries == 0 {
            first_started
        } else {
            Instant::now()
        };
        let name = proxy.shared.names.request_id.as_str().as_bytes();
        let id = ex.request_id.as_ref().map_or(&b""[..], |v| v.as_bytes());
        let sent = send(pool, index, client, out, facts, (name, id), progress).await;
        backend
            .series
            .response_seconds
            .observe(started.elapsed().as_secs_f64());
        match sent {
            Ok((upstream, head)) => {
                ex.outcome = Some(Outcome::Routed);
                if proxy.shared.access_log {
                    ex.backend = Some(backend.name.clone());
                }
                let result = relay(pool, index, upstream, head, client, out, facts, progress).await;
                drop(in_flight);
                return result;
            }
            Err(e) => {
                if !e.is_client_fault() {
                    pool.record_failure(index);
                }
                if !pool.retry_after(&e, facts.idempotent, replayable, retries) {
                    return Err(e);
                }
                tracing::debug!(pool = %pool.name, backend = %backend.addr, error = %e, "retrying on another backend");
                retries += 1;
                if index < 64 {
                    tried |= 1 << index;
                }
                last_error = Some(e);
            }
        }
    }
}

/// Sends the request to backend `index` and reads the response head (the
/// client's response head is then in `out`). A kept-alive connection the
/// backend closed meanwhile is replaced once when nothing of the body was
/// sent.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    index: usize,
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    facts: &Facts,
    request_id: (&[u8], &[u8]),
    progress: &mut Progress,
) -> Result<(Upstream, Head), UpstreamError> {
    let backend = &pool.backends[index];
    let reset =
        |e: &dyn std::fmt::Display| UpstreamError::Reset(backend.name.clone(), e.to_string());
    // A bodiless idempotent request is sent again on a new connection if a
    // kept-alive one turns out closed (below), so it skips the check.
    let replay = facts.framing == RequestFraming::Length(0) && facts.idempotent;
    let check = !replay;
    let mut upstream = pool::take_or_connect(pool, backend, check).await?;
    let head_len = out.len();
    loop {
        out.truncate(head_len);
        let sent = send_request(pool, &mut upstream, client, out, facts, progress).await;
        let sent = match sent {
            Ok(()) => {
                let client_keep_alive = facts.keep_alive && progress.body_done;
                let head = read_head(&mut upstream, facts, out, request_id, client_keep_alive);
                tokio::time::timeout(pool.response_timeout, head)
                    .await
                    .unwrap_or_else(|_| Err(UpstreamError::Timeout(backend.name.clone())))
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(head) => return Ok((upstream, head)),
            Err(UpstreamError::Reset(..))
                if upstream.reused && facts.framing == RequestFraming::Length(0) =>
            {
                upstream = pool::connect(pool, backend).await?;
            }
            Err(UpstreamError::Reset(_, why)) => return Err(reset(&why)),
            Err(UpstreamError::Certificate(_, why)) => {
                return Err(UpstreamError::Certificate(backend.name.clone(), why))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes the head (with the body bytes already read) in one write, then
/// the rest of the body as it arrives.
async fn send_request<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    upstream: &mut Upstream,
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    facts: &Facts,
    progress: &mut Progress,
) -> Result<(), UpstreamError> {
    let reset = |e: std::io::Error| UpstreamError::Reset(String::new(), e.to_string());
    match facts.framing {
        RequestFraming::Length(0) => upstream.stream.write_all(out).await.map_err(reset),
        RequestFraming::Length(mut left) => {
            let mut first = true;
            loop {
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(client.buf.len());
                out.extend_from_slice(&client.buf[..take]);
                client.consume(take);
                left -= take as u64;
                if first || !out.is_empty() {
                    upstream.stream.write_all(out).await.map_err(reset)?;
                }
                out.clear();
                first = false;
                if left == 0 {
                    progress.body_done = true;
                    return Ok(());
                }
                if !read_body(pool, upstream, client, progress).await? {
                    return Ok(());
                }
            }
        }
        RequestFraming::Chunked => {
            let mut framer = Chunked::new(false);
            loop {
                let mut at = 0;
                loop {
                    match framer.next_piece(&client.buf[at..]) {
                        Ok(Piece::Forward(n)) => {
                            out.extend_from_slice(&client.buf[at..at + n]);
                            at += n;
                        }
                        Ok(Piece::Drop(n)) => at += n,
                        Ok(Piece::NeedMore | Piece::Done) => break,
                        Err(e) => return Err(UpstreamError::ClientBody(e.to_string())),
                    }
                }
                client.consume(at);
                if framer.payload > facts.max_body {
                    return Err(UpstreamError::BodyTooLarge);
                }
                upstream.stream.write_all(out).await.map_err(reset)?;
                out.clear();
                if framer.is_done() {
                    progress.body_done = true;
                    return Ok(());
                }
                if !read_body(pool, upstream, client, progress).await? {
                    return Ok(());
                }
            }
        }
    }
}

/// Reads more of the client's body, within the response timeout, watching
/// the backend meanwhile: `Ok(false)` when it answered early (the rest of
/// the body is not sent), and the client's fault when it gave up waiting.
async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    upstream: &mut Upstream,
    client: &mut Client<S>,
    progress: &mut Progress,
) -> Result<bool, UpstreamError> {
    progress.waiting_on_client = true;
    let read = tokio::time::timeout(pool.response_timeout, async {
        tokio::select! {
            read = client.fill() => Ok(read),
            spoke = upstream.stream.read_buf(&mut upstream.buf) => Err(spoke),
        }
    })
    .await;
    progress.waiting_on_client = false;
    match read {
        Err(_) => Err(UpstreamError::ClientTimeout),
        Ok(Ok(Ok(0))) => Err(UpstreamError::ClientBody(
            "the client closed before its body ended".into(),
        )),
        Ok(Ok(Ok(_))) => Ok(true),
        Ok(Ok(Err(e))) => Err(UpstreamError::ClientBody(e.to_string())),
        // The backend closed while the client was slow: the client's fault.
        Ok(Err(Ok(0) | Err(_))) => Err(UpstreamError::ClientTimeout),
        Ok(Err(Ok(_))) => Ok(false),
    }
}
