//! The data path's own short answers (400, 404, 403, 502, 504, …) and the
//! response body type that carries either those or a streamed backend body.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::upstream::UpstreamError;

/// A backend's streamed body, or a short body of our own.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

pub fn streamed(body: Incoming) -> ProxyBody {
    Either::Left(body)
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

/// 413 for an oversized body, 504 for a timeout, 503 when a pool has no
/// backend, 502 otherwise. Backend addresses go to the log, not the client.
pub fn upstream_error(err: &UpstreamError) -> Response<ProxyBody> {
    let (status, body) = match err {
        UpstreamError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
        UpstreamError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "gateway timeout: the backend did not answer in time\n",
        ),
        UpstreamError::NoBackend(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable: no backend for this tenant\n",
        ),
        UpstreamError::Connect(_) | UpstreamError::Failed(..) => (
            StatusCode::BAD_GATEWAY,
            "bad gateway: the backend could not be reached\n",
        ),
    };
    text(status, body)
}
