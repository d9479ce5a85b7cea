//! Forward phase: send the prepared request to a backend of the pool, retry
//! on another backend when that is safe and the budget allows, and map
//! failures to errors the proxy answers with 502 / 503 / 504, or with 400 /
//! 408 / 413 when the client's body was at fault (which no backend pays for).

use std::error::Error as StdError;
use std::time::Instant;

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response, Uri};
use http_body::Body as _;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;

use super::client_body::{BodyProgress, ClientBody, ClientBodyError};
use super::connect::{ConnectError, Target};
use super::{Backend, InFlight, Pool};

/// The request body sent upstream: the client's body (capped in size), or
/// nothing when a bodiless request is replayed on another backend.
pub type UpstreamRequestBody = Either<ClientBody, Empty<Bytes>>;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no healthy backend in pool '{0}'")]
    NoBackend(String),
    #[error("backend {0} refused the connection")]
    Connect(String),
    /// TLS to the backend failed on a certificate: its own did not verify,
    /// or it refused ours (or its absence).
    #[error("backend {0}: certificate error: {1}")]
    Certificate(String, String),
    #[error("backend {0} did not answer in time")]
    Timeout(String),
    #[error("request body larger than the limit")]
    BodyTooLarge,
    /// The client's body broke off (bad chunk, hang-up): nothing to retry.
    #[error("{0}")]
    ClientBody(String),
    /// The backend waited on the client's body past the timeout.
    #[error("the client's request body did not arrive in time")]
    ClientTimeout,
    /// The connection broke before a response (reset, closed): safe to
    /// replay for idempotent requests.
    #[error("backend {0} dropped the connection: {1}")]
    Reset(String, String),
}

impl UpstreamError {
    /// Whether the client's request caused it (answered with a 4xx, and
    /// never counted against the backend).
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            UpstreamError::BodyTooLarge
                | UpstreamError::ClientBody(_)
                | UpstreamError::ClientTimeout
        )
    }
}

/// A backend's response, with the in-flight count it holds until the
/// response body is done.
pub struct Forwarded {
    pub response: Response<Incoming>,
    pub in_flight: InFlight,
}

/// Sends `req` (whose URI holds only path and query, whose body is capped
/// by `ClientBody::new`) to a backend of `pool`.
pub async fn forward(
    pool: &Pool,
    worker: usize,
    tenant: &str,
    req: Request<ClientBody>,
) -> Result<Forwarded, UpstreamError> {
    let (parts, body) = req.into_parts();
    let progress = body.progress();
    let attempts = attempts(pool, worker, tenant, parts, body, progress.as_deref());
    match pool.total_timeout {
        Some(total) => tokio::time::timeout(total, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(timed_out(
                    progress.as_deref(),
                    format!("pool {}", pool.name),
                ))
            }),
        None => attempts.await,
    }
}

/// A timeout's error: the client's fault if the backend was left waiting
/// for the rest of its body, else the backend's.
fn timed_out(progress: Option<&BodyProgress>, what: String) -> UpstreamError {
    if progress.is_some_and(BodyProgress::waiting_on_client) {
        UpstreamError::ClientTimeout
    } else {
        UpstreamError::Timeout(what)
    }
}

async fn attempts(
    pool: &Pool,
    worker: usize,
    tenant: &str,
    parts: http::request::Parts,
    body: ClientBody,
    progress: Option<&BodyProgress>,
) -> Result<Forwarded, UpstreamError> {
    pool.count_request();
    // Only a request without a body can be sent again (a streamed body is gone
    // once sent), and the copy is only worth taking when another backend exists.
    let can_retry = pool.may_retry();
    let replay = (can_retry && body.is_end_stream()).then(|| {
        (
            parts.method.clone(),
            parts.uri.clone(),
            parts.version,
            parts.headers.clone(),
        )
    });
    let idempotent = parts.method.is_idempotent();
    let mut first = Some(Request::from_parts(parts, Either::Left(body)));
    let mut tried = 0u64;
    let mut retries = 0;
    let mut last_error = None;
    loop {
        let Some(index) = pool.pick(tenant, tried) else {
            // After a failed attempt, its error says more than "nothing left to try".
            return Err(last_error.unwrap_or_else(|| UpstreamError::NoBackend(pool.name.clone())));
        };
        let backend = &pool.backends[index];
        let req = match (first.take(), &replay) {
            (Some(req), _) => req,
            (None, Some((method, uri, version, headers))) => {
                let mut req = Request::new(Either::Right(Empty::new()));
                *req.method_mut() = method.clone();
                *req.uri_mut() = uri.clone();
                *req.version_mut() = *version;
                *req.headers_mut() = headers.clone();
                req
            }
            (None, None) => unreachable!("retries only happen with a replayable request"),
        };
        let in_flight = backend.start();
        let started = Instant::now();
        let result = send(pool, worker, backend, req, progress).await;
        backend
            .series
            .response_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(response) => {
                if response.status().is_server_error() {
                    pool.record_failure(index);
                } else {
                    backend.record_success();
                }
                return Ok(Forwarded {
                    response,
                    in_flight,
                });
            }
            Err(e) => {
                if !e.is_client_fault() {
                    pool.record_failure(index);
                }
                if !pool.retry_after(&e, idempotent, replay.is_some(), retries) {
                    return Err(e);
                }
                tracing::debug!(pool = %pool.name, backend = %backend.name, error = %e, "retrying on another backend");
                retries += 1;
                if index < 64 {
                    tried |= 1 << index;
                }
                last_error = Some(e);
            }
        }
    }
}

async fn send(
    pool: &Pool,
    worker: usize,
    backend: &Backend,
    mut req: Request<super::UpstreamRequestBody>,
    progress: Option<&BodyProgress>,
) -> Result<Response<Incoming>, UpstreamError> {
    let mut parts = req.uri().clone().into_parts();
    // The authority names the backend to the pool's connector (and keys the
    // client's kept-alive connections); the Host header stays the client's.
    parts.scheme = Some(match backend.target {
        Target::Tls { .. } => Scheme::HTTPS,
        _ => Scheme::HTTP,
    });
    parts.authority = Some(backend.key.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = Uri::from_parts(parts)
        .map_err(|e| UpstreamError::Reset(backend.name.clone(), e.to_string()))?;
    match tokio::time::timeout(pool.response_timeout, pool.client(worker).request(req)).await {
        Err(_) => Err(timed_out(progress, backend.name.clone())),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(classify(&backend.name, &e, progress)),
    }
}

fn classify(
    backend: &str,
    err: &hyper_util::client::legacy::Error,
    progress: Option<&BodyProgress>,
) -> UpstreamError {
    if let Some(cert) = super::tls::certificate_error(err) {
        // Also a refusal of our certificate that TLS 1.3 only reports
        // once the request is sent.
        return UpstreamError::Certificate(backend.to_owned(), cert.to_string());
    }
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = source {
        match e.downcast_ref::<ClientBodyError>() {
            Some(ClientBodyError::TooLarge) => return UpstreamError::BodyTooLarge,
            Some(broken @ ClientBodyError::Broken(_)) => {
                return UpstreamError::ClientBody(broken.to_string())
            }
            None => {}
        }
        match e.downcast_ref::<ConnectError>() {
            Some(ConnectError::Timeout(_)) => return timed_out(progress, backend.to_owned()),
            Some(ConnectError::Certificate(why)) => {
                return UpstreamError::Certificate(backend.to_owned(), why.clone())
            }
            _ => {}
        }
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return timed_out(progress, backend.to_owned());
        }
        source = e.source();
    }
    if err.is_connect() {
        UpstreamError::Connect(backend.to_owned())
    } else if progress.is_some_and(BodyProgress::waiting_on_client) {
        // The backend gave up on a body the client was too slow to send
        // (its own read timeout): the client's fault, as a timeout here is.
        UpstreamError::ClientTimeout
    } else {
        UpstreamError::Reset(backend.to_owned(), err.to_string())
    }
}
