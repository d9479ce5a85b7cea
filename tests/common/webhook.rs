//! A webhook receiver on a free loopback port: records every request's
//! path and JSON body, and answers them all with one status (so a test can
//! make a webhook fail). Stopped on drop.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a webhook receiver was sent: `(path, body)` in arrival order.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

pub struct Webhook {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    received: Received,
    stop: CancellationToken,
}

impl Webhook {
    /// A receiver answering every request with `status` and a short body.
    pub async fn start(status: StatusCode) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let url = format!("http://{}", listener.local_addr().expect("webhook address"));
        let received: Received = Arc::default();
        let stop = CancellationToken::new();
        let (log, cancelled) = (received.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    () = cancelled.cancelled() => return,
                };
                let log = log.clone();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let json = body
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or(Value::Null);
                        log.lock().unwrap().push((path, json));
                        let answer = format!("webhook says {}", status.as_u16());
                        let mut response = Response::new(Full::new(Bytes::from(answer)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned(),
                );
            }
        });
        Webhook {
            url,
            received,
            stop,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<(String, Value)> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `count` requests arrived, then returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<(String, Value)> {
        super::eventually(Duration::from_secs(10), "the webhook is called", || async {
            self.received.lock().unwrap().len() >= count
        })
        .await;
        self.received()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
