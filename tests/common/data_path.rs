//! Data-path requests with full control of the Host header (pooled, on new
//! connections, or as raw bytes), and the answers: the reply itself and what
//! the echo backend saw.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde_json::Value;

use super::{Gateway, REQUEST_TIMEOUT};

impl Gateway {
    /// A new HTTP/2 connection with prior knowledge (h2c), its driver spawned.
    pub async fn h2c<B>(&self) -> hyper::client::conn::http2::SendRequest<B>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        sender
    }

    /// `GET path` with the given Host header.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        self.request(Method::GET, host, path).send().await
    }

    /// A data-path request to finish with headers and a body, then `.send()`.
    pub fn request(&self, method: Method, host: &str, path: &str) -> Call<'_> {
        Call {
            gateway: self,
            method,
            host: host.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            new_connection: false,
        }
    }

    /// The status `host` gets on every data-path worker (see
    /// [`Gateway::answers_everywhere`]).
    pub async fn status_everywhere(&self, host: &str) -> StatusCode {
        self.answers_everywhere(host).await.status
    }

    /// The tenant (`X-Tenant-ID` seen by the backend) that `host` reaches on
    /// every data-path worker; `None` if the request is not forwarded.
    pub async fn tenant_everywhere(&self, host: &str) -> Option<String> {
        let reply = self.answers_everywhere(host).await;
        serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|seen| seen["headers"]["x-tenant-id"].as_str().map(str::to_owned))
    }

    /// Sends `GET /` for `host` on several new connections, which the kernel
    /// spreads over the workers' listeners, checks that every answer has the
    /// same status and tenant (or body, when not forwarded), and returns one.
    pub async fn answers_everywhere(&self, host: &str) -> Reply {
        let summary = |reply: &Reply| match serde_json::from_slice::<Value>(&reply.body) {
            Ok(seen) => format!(
                "{} for tenant {}",
                reply.status, seen["headers"]["x-tenant-id"]
            ),
            Err(_) => format!("{} {:?}", reply.status, reply.text()),
        };
        let first = self
            .request(Method::GET, host, "/")
            .new_connection()
            .send()
            .await;
        for _ in 1..8 {
            let next = self
                .request(Method::GET, host, "/")
                .new_connection()
                .send()
                .await;
            assert_eq!(
                summary(&next),
                summary(&first),
                "Host: {host} got different answers on different connections"
            );
        }
        first
    }

    /// Writes `raw` bytes to a fresh data-path connection and reads the
    /// answer until the gateway closes it. For requests a well-behaved
    /// client cannot send (no Host, two Hosts, hand-made chunking). Send
    /// `Connection: close` (or HTTP/1.0) so the gateway ends the exchange.
    pub async fn raw(&self, raw: &[u8]) -> RawReply {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .expect("connect");
            stream.write_all(raw).await.expect("write raw request");
            let mut answer = Vec::new();
            // A reset after the answer is fine: we have what was sent.
            let _ = stream.read_to_end(&mut answer).await;
            answer
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("raw request timed out\n{}", self.log()));
        RawReply::parse(&answer)
    }

    /// Whether a new TCP connection to the data path is refused.
    pub async fn refuses_connections(&self) -> bool {
        tokio::net::TcpStream::connect(self.addr).await.is_err()
    }

    pub(super) async fn exchange(&self, req: Request<Full<Bytes>>) -> Reply {
        self.exchange_on(&self.client, req).await
    }

    async fn exchange_on(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        req: Request<Full<Bytes>>,
    ) -> Reply {
        let what = format!("{} {}", req.method(), req.uri());
        fetch(client, req)
            .await
            .unwrap_or_else(|e| panic!("{what} failed: {e}\n{}", self.log()))
    }
}

/// Sends `req` and reads the whole answer, within [`REQUEST_TIMEOUT`].
pub(super) async fn fetch(
    client: &Client<HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<Reply, String> {
    let exchange = async {
        let response = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// A data-path request being built; see [`Gateway::request`].
pub struct Call<'a> {
    gateway: &'a Gateway,
    method: Method,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    new_connection: bool,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request on a connection of its own rather than a pooled one.
    pub fn new_connection(mut self) -> Self {
        self.new_connection = true;
        self
    }

    pub async fn send(self) -> Reply {
        let mut req = Request::builder()
            .method(self.method)
            .uri(format!("http://{}{}", self.gateway.addr, self.path))
            // The client keeps a Host header that is already there.
            .header("host", &self.host);
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(self.body)).expect("data-path request");
        let client = if self.new_connection {
            &self.gateway.one_shot
        } else {
            &self.gateway.client
        };
        self.gateway.exchange_on(client, req).await
    }
}

/// A whole HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// What the echo backend saw; panics (showing the answer) if the
    /// request did not reach an echo backend.
    pub fn seen(&self) -> Seen {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(json) if json.get("backend").is_some() => Seen(json),
            _ => panic!(
                "expected an echo backend's answer, got {} {:?}",
                self.status,
                self.text()
            ),
        }
    }
}

/// The request as an echo backend received it.
#[derive(Debug, Clone)]
pub struct Seen(pub Value);

impl Seen {
    /// The name the answering backend was started with.
    pub fn backend(&self) -> &str {
        self.0["backend"].as_str().unwrap_or_default()
    }

    pub fn path(&self) -> &str {
        self.0["path"].as_str().unwrap_or_default()
    }

    pub fn body_bytes(&self) -> u64 {
        self.0["body_bytes"].as_u64().unwrap_or_default()
    }

    /// A header the backend received (several values joined with ", ").
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"][name.to_ascii_lowercase()].as_str()
    }

    /// Names of every `x-tenant-*` header the backend received.
    pub fn tenant_header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0["headers"]
            .as_object()
            .map(|h| {
                h.keys()
                    .filter(|k| k.starts_with("x-tenant-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawReply {
    fn parse(answer: &[u8]) -> RawReply {
        let text = String::from_utf8_lossy(answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
        RawReply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}
