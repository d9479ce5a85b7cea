//! Connect step of the forward phase: the connector of the per-worker
//! backend clients. It opens TCP connections with hyper-util's
//! `HttpConnector` and times each one into its backend's connect histogram.
//! A request on a pooled (kept-alive) connection never reaches the
//! connector, so only new connections pay for the timing.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::uri::Authority;
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use prometheus::Histogram;
use tokio::net::TcpStream;

type BoxError = Box<dyn StdError + Send + Sync>;

/// An `HttpConnector` that observes how long each successful connect took,
/// labelled by the backend it reached. Failed connects are counted as
/// backend errors by the forward phase, not timed here.
#[derive(Clone)]
pub struct TimedConnector {
    inner: HttpConnector,
    /// The pool's backends and their connect histograms, searched once per
    /// new connection (a pool has a handful of backends).
    backends: Arc<[(Authority, Histogram)]>,
}

impl TimedConnector {
    pub fn new(inner: HttpConnector, backends: Arc<[(Authority, Histogram)]>) -> TimedConnector {
        TimedConnector { inner, backends }
    }

    fn histogram_for(&self, uri: &Uri) -> Option<Histogram> {
        let authority = uri.authority()?;
        self.backends
            .iter()
            .find(|(a, _)| a == authority)
            .map(|(_, h)| h.clone())
    }
}

impl tower_service::Service<Uri> for TimedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let histogram = self.histogram_for(&uri);
        let connecting = self.inner.call(uri);
        let started = Instant::now();
        Box::pin(async move {
            let stream = connecting.await?;
            if let Some(histogram) = histogram {
                histogram.observe(started.elapsed().as_secs_f64());
            }
            Ok(stream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::HistogramOpts;
    use tower_service::Service;

    #[tokio::test]
    async fn each_new_connection_is_timed_for_its_backend() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let histogram = Histogram::with_opts(HistogramOpts::new("t", "t")).unwrap();
        let other = Histogram::with_opts(HistogramOpts::new("o", "o")).unwrap();
        let backends: Arc<[(Authority, Histogram)]> = Arc::new([
            ("10.0.0.1:1".parse().unwrap(), other.clone()),
            (addr.to_string().parse().unwrap(), histogram.clone()),
        ]);
        let mut connector = TimedConnector::new(HttpConnector::new(), backends);
        let uri: Uri = format!("http://{addr}/").parse().unwrap();
        let _first = connector.call(uri.clone()).await.unwrap();
        let _second = connector.call(uri).await.unwrap();
        assert_eq!(histogram.get_sample_count(), 2);
        assert_eq!(other.get_sample_count(), 0);
    }
}
