//! The data path's own short answers (400, 404, 403, 502, 504, …) and the
//! response body type that carries either those or a streamed backend body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use super::meter::Tally;
use crate::traffic::limits::Admitted;
use crate::upstream::{InFlight, UpstreamError};

/// A backend's streamed body, or a short body of our own.
pub type ProxyBody = Either<Streamed, Full<Bytes>>;

/// A backend's body, streamed through; the backend counts the request as in
/// flight until the body is done (or the client goes away), and so does the
/// tenant's concurrency cap.
pub struct Streamed {
    body: Incoming,
    _in_flight: InFlight,
    _admitted: Option<Admitted>,
    /// Counts the body's bytes for usage metering (`usage.enabled`); boxed
    /// so that a response without it stays as small as before.
    tally: Option<Box<Tally>>,
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let (Some(tally), Poll::Ready(Some(Ok(frame)))) = (&mut this.tally, &polled) {
            tally.bytes_out += frame.data_ref().map_or(0, |d| d.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pub(crate) fn streamed(
    body: Incoming,
    in_flight: InFlight,
    admitted: Option<Admitted>,
    tally: Option<Box<Tally>>,
) -> ProxyBody {
    Either::Left(Streamed {
        body,
        _in_flight: in_flight,
        _admitted: admitted,
        tally,
    })
}

pub fn empty() -> ProxyBody {
    Either::Right(Full::new(Bytes::new()))
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 413 for an oversized body, 400 for a broken one, 408 for one too slow,
/// 504 for a timeout, 503 when a pool has no backend, 502 otherwise.
/// Backend addresses go to the log, not the client.
pub fn upstream_error(err: &UpstreamError) -> Response<ProxyBody> {
    let (status, body) = match err {
        UpstreamError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
        UpstreamError::ClientBody(_) => (
            StatusCode::BAD_REQUEST,
            "bad request: the request body could not be read\n",
        ),
        UpstreamError::ClientTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "request timeout: the request body did not arrive in time\n",
        ),
        UpstreamError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "gateway timeout: the backend did not answer in time\n",
        ),
        UpstreamError::NoBackend(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable: no healthy backend for this tenant\n",
        ),
        UpstreamError::Connect(_) | UpstreamError::Reset(..) | UpstreamError::Certificate(..) => (
            StatusCode::BAD_GATEWAY,
            "bad gateway: the backend could not be reached\n",
        ),
    };
    text(status, body)
}
