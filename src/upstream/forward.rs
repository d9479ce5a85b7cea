//! Forward phase: one pooled keep-alive hyper client per data-path worker
//! (no pool lock shared across threads), with connect and response-header
//! timeouts mapped to 502/504-worthy errors.

use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response, Uri};
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::BackendAddr;
use crate::config::UpstreamConfig;

/// The request body sent upstream: the client's body, capped in size.
pub type UpstreamRequestBody = Limited<Incoming>;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no backend available in pool '{0}'")]
    NoBackend(String),
    #[error("backend {0} refused or dropped the connection")]
    Connect(String),
    #[error("backend {0} did not answer in time")]
    Timeout(String),
    #[error("request body larger than the limit")]
    BodyTooLarge,
    #[error("backend {0} failed: {1}")]
    Failed(String, String),
}

/// Sends requests to backends over pooled keep-alive connections.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, UpstreamRequestBody>,
    response_timeout: Duration,
}

impl Forwarder {
    pub fn new(config: &UpstreamConfig) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.idle_timeout)
            .pool_max_idle_per_host(config.max_idle_per_backend)
            .build(connector);
        Forwarder {
            client,
            response_timeout: config.response_timeout,
        }
    }

    /// Sends `req` (whose URI holds only path and query) to `backend`.
    pub async fn send(
        &self,
        backend: &BackendAddr,
        mut req: Request<UpstreamRequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(backend.scheme.clone());
        parts.authority = Some(backend.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        *req.uri_mut() = Uri::from_parts(parts)
            .map_err(|e| UpstreamError::Failed(backend.to_string(), e.to_string()))?;
        match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout(backend.to_string())),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(classify(backend, &e)),
        }
    }
}

fn classify(backend: &BackendAddr, err: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return UpstreamError::BodyTooLarge;
        }
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return UpstreamError::Timeout(backend.to_string());
        }
        source = e.source();
    }
    if err.is_connect() {
        UpstreamError::Connect(backend.to_string())
    } else {
        UpstreamError::Failed(backend.to_string(), err.to_string())
    }
}
