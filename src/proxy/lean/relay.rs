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
use crate::proxy::{Exchange, Proxy};
use crate::upstream::{Pool, UpstreamError};

/// Reads until the buffer starts with a final response head (1xx interim
/// answers other than 101 are dropped: the client sent no `Expect`).
pub(super) async fn read_head(upstream: &mut Upstream, facts: &Facts) -> Result<(), UpstreamError> {
    let reset = |why: &str| UpstreamError::Reset(String::new(), why.to_owned());
    loop {
        if h1::has_blank_line(&upstream.buf) {
            let mut storage = [httparse::EMPTY_HEADER; 100];
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
                Ok(Some(_)) => return Ok(()),
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

/// Writes the response head and streams the body to the client.
#[allow(clippy::too_many_arguments)]
pub(super) async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    proxy: &Proxy,
    pool: &Pool,
    index: usize,
    mut upstream: Upstream,
    client: &mut Client<S>,
    out: &mut Vec<u8>,
    facts: &Facts,
    ex: &mut Exchange,
    progress: &mut Progress,
) -> Result<(), UpstreamError> {
    let backend = &pool.backends[index];
    let broke = |e: std::io::Error| UpstreamError::Reset(backend.name.clone(), e.to_string());
    let (framing, upstream_keep_alive) = {
        let mut storage = [httparse::EMPTY_HEADER; 100];
        let head = h1::parse_response(
            &upstream.buf,
            &mut storage,
            &h1::Limits::default(),
            facts.to_head,
        )
        .ok()
        .flatten()
        .ok_or_else(|| UpstreamError::Reset(backend.name.clone(), "response head".into()))?;
        let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
        if status.is_server_error() {
            pool.record_failure(index);
        } else {
            backend.record_success();
        }
        progress.status = Some(status);
        progress.keep_alive = facts.keep_alive && head.framing != ResponseFraming::Close;
        out.clear();
        let id = ex.request_id.as_ref().map_or(&b""[..], |v| v.as_bytes());
        let name = proxy.shared.names.request_id.as_str().as_bytes();
        head::client_response(
            out,
            &head,
            name,
            id,
            progress.keep_alive && progress.body_done,
        );
        let head_len = head.head_len;
        let parsed = (head.framing, head.keep_alive);
        upstream.buf.drain(..head_len);
        parsed
    };
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
