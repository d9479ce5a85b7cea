//! The client's request body on its way to a backend: capped in size, and
//! watched, so that a body the client breaks (a bad chunk, a hang-up, too
//! large, too slow) is answered as the client's fault and never counted
//! against the backend. Otherwise any client could get healthy backends
//! ejected by sending broken bodies.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Why the client's body could not be sent on.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    #[error("request body larger than the limit")]
    TooLarge,
    #[error("the client's request body broke off: {0}")]
    Broken(#[source] hyper::Error),
}

/// Where sending the body stands, shared with the forward phase so a
/// timeout can tell whom it waited on.
#[derive(Debug, Default)]
pub struct BodyProgress(AtomicU8, AtomicU64);

/// Sending proceeds at the backend's pace (or has not started).
const AT_BACKENDS_PACE: u8 = 0;
/// The last read found no data from the client yet.
const WAITING_ON_CLIENT: u8 = 1;
/// The whole body was read.
const DONE: u8 = 2;

impl BodyProgress {
    /// Whether the body is unfinished because the client has not sent it.
    pub fn waiting_on_client(&self) -> bool {
        self.0.load(Ordering::Acquire) == WAITING_ON_CLIENT
    }

    /// Body bytes read from the client so far (usage metering's bytes in).
    pub fn bytes_read(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }
}

/// The client's body, at most `remaining` more bytes of it.
pub struct ClientBody {
    inner: Incoming,
    remaining: usize,
    /// Only bodies with something to send are watched: a bodiless request
    /// (the common case) allocates nothing.
    progress: Option<Arc<BodyProgress>>,
}

impl ClientBody {
    pub fn new(inner: Incoming, limit: usize) -> ClientBody {
        let progress = (!inner.is_end_stream()).then(Arc::default);
        ClientBody {
            inner,
            remaining: limit,
            progress,
        }
    }

    pub fn progress(&self) -> Option<Arc<BodyProgress>> {
        self.progress.clone()
    }

    fn mark(&self, state: u8) {
        if let Some(progress) = &self.progress {
            progress.set(state);
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending() {
            this.mark(WAITING_ON_CLIENT);
        }
        let frame = match ready!(polled) {
            None => {
                this.mark(DONE);
                return Poll::Ready(None);
            }
            Some(Err(e)) => {
                this.mark(DONE);
                return Poll::Ready(Some(Err(ClientBodyError::Broken(e))));
            }
            Some(Ok(frame)) => frame,
        };
        let size = frame.data_ref().map_or(0, Bytes::len);
        if size > this.remaining {
            this.mark(DONE);
            return Poll::Ready(Some(Err(ClientBodyError::TooLarge)));
        }
        this.remaining -= size;
        if let Some(progress) = &this.progress {
            progress.1.fetch_add(size as u64, Ordering::Relaxed);
        }
        this.mark(if this.inner.is_end_stream() {
            DONE
        } else {
            AT_BACKENDS_PACE
        });
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // As `http_body_util::Limited` does: what a backend is told never
        // goes past the limit (a declared length over it is refused before
        // forwarding; a chunked body is cut off by `poll_frame`).
        let mut hint = self.inner.size_hint();
        let limit = self.remaining as u64;
        if hint.lower() >= limit {
            hint.set_exact(limit);
        } else if let Some(upper) = hint.upper() {
            hint.set_upper(limit.min(upper));
        } else {
            hint.set_upper(limit);
        }
        hint
    }
}
