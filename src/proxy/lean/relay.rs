//! Stream phase of the lean path: the backend's response head read (interim
//! 1xx answers dropped) and passed on without its hop-by-hop headers, then
//! its body streamed to the client by Content-Length, chunks or until close,
//! with backpressure; the connection goes back to the worker's pool after a
//! clean end.

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::h1::{self, Chunked, Piece, ResponseFraming};
use super::forward::Progress;
use super::pool::{self, Upstream};
use super::{head, Client, Facts};
use crate::upstream::{Pool, UpstreamError};

/// What relaying needs of the final response head once its bytes are gone.
pub(super) struct Head {
    pub status: StatusCode,
    pub framing: ResponseFraming,
    /// The backend will take another request on this connection.
    pub keep_alive: bool,
}

/// Reads until the buffer starts with a final response head (1xx interim
/// answers other than 101 are dropped: the client sent no `Expect`), writes
/// the client's response head into `out` and drops the backend's from the
/// buffer: the head is parsed once. `client_keep_alive`: the client's
/// connection can stay open as far as the request goes.
pub(super) async fn read_head(
    upstream: &mut Upstream,
    facts: &Facts,
    out: &mut Vec<u8>,
    request_id: (&[u8], &[u8]),
    client_keep_alive: bool,
) -> Result<Head, UpstreamError> {
    let reset = |why: &str| UpstreamError::Reset(String::new(), why.to_owned());
    loop {
        if h1::has_blank_line(&upstream.buf) {
            let mut storage = h1::header_storage();
            match h1::parse_response(
                &upstream.buf,
                &mut storage,
                &h1::Limits::default(),
                facts.to_head,
            ) {
                Ok(Some(head)) if (100..200).contains(&head.status) && head.status != 101 => {
                    let n = head.head_len;
                    upstream.buf.drain(..n);
                    continue;
                }
                Ok(Some(head)) => {
                    let keep_alive = client_keep_alive && head.framing != ResponseFraming::Close;
                    out.clear();
                    head::client_response(out, &head, request_id.0, request_id.1, keep_alive);
                    let parsed = Head {
                        status: StatusCode::from_u16(head.status)
                            .unwrap_or(StatusCode::BAD_GATEWAY),
                        framing: head.framing,
                        keep_alive: head.keep_alive,
                    };
                    let n = head.head_len;
                    upstream.buf.drain(..n);
                    return Ok(parsed);
                }
                Ok(None) => {}
                Err(e) => return Err(reset(&format!("bad response head: {e}"))),
            }
        }
        if upstream.buf.capacity() - upstream.buf.len() < 4096 {
            upstream.buf.reserve(16 * 1024);
        }
        match upstream.stream.read_buf(&mut upstream.buf).await {
            Ok(0) => return Err(reset("closed before a response")),
            Ok(_) => {}
            // A TLS 1.3 backend refuses our certificate only now.
            Err(e) => {
                return Err(match crate::upstream::tls::certificate_error(&e) {
                    Some(cert) => UpstreamError::Certificate(String::new(), cert.to_string()),
                    None => reset(&e.to_string()),
                })
            }
        }
    }
}

/// Streams the body to the client after the response head `read_head` put
/// in `out`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    pool: &Pool,
    index: usize,
    mut upstream: Upstream,
    head: Head,
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    facts: &Facts,
    progress: &mut Progress,
) -> Result<(), UpstreamError> {
    let backend = &pool.backends[index];
    let broke = |e: std::io::Error| UpstreamError::Reset(backend.name.clone(), e.to_string());
    if head.status.is_server_error() {
        pool.record_failure(index);
    } else {
        backend.record_success();
    }
    progress.status = Some(head.status);
    progress.keep_alive = facts.keep_alive && head.framing != ResponseFraming::Close;
    let (framing, upstream_keep_alive) = (head.framing, head.keep_alive);
    let mut left = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    let mut framer = Chunked::new(true);
    let mut done = framing == ResponseFraming::Empty || left == 0;
    loop {
        // Pass on what the buffer holds of the body.
        let mut at = 0;
        while !done && at < upstream.buf.len() {
            let n = match framing {
                ResponseFraming::Chunked => match framer.next_piece(&upstream.buf[at..]) {
                    Ok(Piece::Forward(n) | Piece::Drop(n)) => n,
                    Ok(Piece::NeedMore) => break,
                    Ok(Piece::Done) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        return Err(UpstreamError::Reset(backend.name.clone(), e.to_string()))
                    }
                },
                _ => usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(upstream.buf.len() - at),
            };
            out.extend_from_slice(&upstream.buf[at..at + n]);
            at += n;
            if let ResponseFraming::Length(_) = framing {
                left -= n as u64;
                done = left == 0;
            }
            done |= framing == ResponseFraming::Chunked && framer.is_done();
        }
        upstream.buf.drain(..at);
        client
            .io
            .write_all(out)
            .await
            .map_err(|e| UpstreamError::ClientBody(e.to_string()))?;
        progress.responded = true;
        out.clear();
        if done {
            break;
        }
        upstream.buf.reserve(16 * 1024);
        match upstream.stream.read_buf(&mut upstream.buf).await {
            Ok(0) if framing == ResponseFraming::Close => break,
            Ok(0) => return Err(broke(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) if framing == ResponseFraming::Close => {
                tracing::debug!(error = %e, "close-delimited body ended with an error");
                break;
            }
            Err(e) => return Err(broke(e)),
        }
    }
    if upstream_keep_alive && framing != ResponseFraming::Close {
        pool::put_back(pool, backend, upstream);
    }
    Ok(())
}
