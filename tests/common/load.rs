//! A client loop on the data path: a few concurrent clients sending `GET`s
//! for one host (each on its own keep-alive connection) until stopped,
//! recording every answer: when it was sent, its status or transport error,
//! and which echo backend served it. For tests that kill, restart, add or
//! remove backends under load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use super::{Gateway, REQUEST_TIMEOUT};

/// A bound on each client, in case a test never stops its loop.
const MAX_REQUESTS_PER_CLIENT: usize = 20_000;
/// A pause between a client's requests, so a loop doesn't starve a 2-core
/// machine running other tests.
const PAUSE: Duration = Duration::from_millis(2);

/// One request of the loop.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sent: Instant,
    pub took: Duration,
    /// `None` when the exchange failed (connection error, timeout).
    pub status: Option<StatusCode>,
    /// The echo backend that answered (`"backend"` of its JSON).
    pub backend: Option<String>,
    /// When the backend received it (`"received_ms"`: ms since the epoch).
    pub received_ms: Option<u64>,
    /// The body when the answer is not an echo, or the transport error.
    pub detail: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status == Some(StatusCode::OK) && self.backend.is_some()
    }

    pub fn served_by(&self, name: &str) -> bool {
        self.backend.as_deref() == Some(name)
    }
}

/// A running client loop; see [`Gateway::load`].
pub struct Load {
    stop: CancellationToken,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Starts `clients` concurrent clients sending `GET /` with `Host: host`.
    pub fn load(&self, host: &str, clients: usize) -> Load {
        let stop = CancellationToken::new();
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let uri = format!("http://{}/", self.addr);
                let (host, stop, outcomes) = (host.to_owned(), stop.clone(), outcomes.clone());
                tokio::spawn(client_loop(uri, host, stop, outcomes))
            })
            .collect();
        Load {
            stop,
            outcomes,
            clients,
        }
    }
}

impl Load {
    /// Every answer so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().expect("outcomes lock").clone()
    }

    /// How many answers so far satisfy `check`.
    pub fn count(&self, check: impl Fn(&Outcome) -> bool) -> usize {
        let outcomes = self.outcomes.lock().expect("outcomes lock");
        outcomes.iter().filter(|o| check(o)).count()
    }

    /// Waits until at least `n` answers satisfy `check`.
    pub async fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Outcome) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while self.count(&check) < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; last answers: {:?}",
                self.outcomes().iter().rev().take(5).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the clients (each finishes its current request) and returns
    /// every answer.
    pub async fn stop(mut self) -> Vec<Outcome> {
        self.stop.cancel();
        for client in std::mem::take(&mut self.clients) {
            client.await.expect("client loop");
        }
        let outcomes = self.outcomes.lock().expect("outcomes lock").clone();
        outcomes
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn client_loop(
    uri: String,
    host: String,
    stop: CancellationToken,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..MAX_REQUESTS_PER_CLIENT {
        if stop.is_cancelled() {
            return;
        }
        let req = Request::get(&uri)
            .header("host", &host)
            .body(Full::new(Bytes::new()))
            .expect("load request");
        let sent = Instant::now();
        let exchange = async {
            let response = client.request(req).await.map_err(|e| format!("{e:?}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok((status, body))) => {
                let seen = serde_json::from_slice::<serde_json::Value>(&body).ok();
                let backend = seen
                    .as_ref()
                    .and_then(|seen| seen["backend"].as_str().map(str::to_owned));
                let received_ms = seen.as_ref().and_then(|seen| seen["received_ms"].as_u64());
                let detail = match backend {
                    Some(_) => String::new(),
                    None => String::from_utf8_lossy(&body).into_owned(),
                };
                Outcome {
                    sent,
                    took: sent.elapsed(),
                    status: Some(status),
                    backend,
                    received_ms,
                    detail,
                }
            }
            Ok(Err(error)) => Outcome {
                sent,
                took: sent.elapsed(),
                status: None,
                backend: None,
                received_ms: None,
                detail: error,
            },
            Err(_) => Outcome {
                sent,
                took: sent.elapsed(),
                status: None,
                backend: None,
                received_ms: None,
                detail: "timed out".into(),
            },
        };
        outcomes.lock().expect("outcomes lock").push(outcome);
        tokio::time::sleep(PAUSE).await;
    }
}
