//! A tiny backend that answers every request with JSON describing what it
//! received (method, path, headers, body size, and when it arrived, in
//! milliseconds since the Unix epoch). `?sleep_ms=N` delays the
//! answer, for drain and timeout tests. A WebSocket handshake is accepted:
//! the first message is that JSON (so the handshake's headers can be
//! checked), then every message is echoed back. Shared by
//! `examples/echo_backend.rs` and the integration-test harness.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// How an echo backend behaves.
#[derive(Clone)]
pub struct Echo {
    /// Tags every answer (`"backend": name`).
    pub name: String,
    /// Added to every answer, on top of `?sleep_ms=`: a slow server.
    pub delay: Duration,
    /// Cancelling it stops accepting and drops every open connection at
    /// once, as a crashed process would.
    pub stop: CancellationToken,
}

/// Serves echo responses on `listener` forever, tagging each with `name`.
pub async fn serve_echo(listener: TcpListener, name: String) {
    let echo = Echo {
        name,
        delay: Duration::ZERO,
        stop: CancellationToken::new(),
    };
    serve(listener, echo).await;
}

/// Serves echo responses on `listener` until `echo.stop` is cancelled.
pub async fn serve(listener: TcpListener, echo: Echo) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = echo.stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        tokio::spawn(serve_connection(stream, echo.clone()));
    }
}

/// Serves echo responses on one accepted connection (HTTP/1.1 with
/// upgrades, or HTTP/2) until it closes or `echo.stop` is cancelled.
pub async fn serve_connection<S>(stream: S, echo: Echo)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stop = echo.stop.clone();
    let service = service_fn(move |req| answer(req, echo.clone()));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        () = stop.cancelled() => {}
    }
}

async fn answer(
    mut req: Request<Incoming>,
    echo: Echo,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let sleep_ms = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sleep_ms=")))
        .and_then(|v| v.parse::<u64>().ok());
    let mut headers = serde_json::Map::new();
    for (key, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(key.as_str().to_owned())
            .and_modify(|prior| {
                let joined = format!("{}, {value}", prior.as_str().unwrap_or_default());
                *prior = serde_json::Value::String(joined);
            })
            .or_insert(serde_json::Value::String(value));
    }
    let method = req.method().to_string();
    let path = req.uri().to_string();
    let websocket_key = websocket_key(&req);
    let upgrade = websocket_key
        .is_some()
        .then(|| hyper::upgrade::on(&mut req));
    let body_bytes = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    let delay = echo.delay + Duration::from_millis(sleep_ms.unwrap_or(0));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = serde_json::json!({
        "backend": echo.name,
        "method": method,
        "path": path,
        "headers": headers,
        "body_bytes": body_bytes,
        "received_ms": received_ms,
    });
    let body = format!("{body:#}\n");
    if let (Some(key), Some(upgrade)) = (websocket_key, upgrade) {
        tokio::spawn(echo_messages(upgrade, body, echo.stop));
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert("connection", "upgrade".parse().expect("header value"));
        headers.insert("upgrade", "websocket".parse().expect("header value"));
        headers.insert(
            "sec-websocket-accept",
            derive_accept_key(key.as_bytes())
                .parse()
                .expect("header value"),
        );
        return Ok(response);
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The `Sec-WebSocket-Key` of a WebSocket handshake, `None` for other requests.
fn websocket_key(req: &Request<Incoming>) -> Option<String> {
    let upgrade = req.headers().get("upgrade")?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    let key = req.headers().get("sec-websocket-key")?.to_str().ok()?;
    Some(key.to_owned())
}

/// Sends `seen` (the handshake as JSON), then echoes every message until the
/// client closes or the backend stops.
async fn echo_messages(upgrade: hyper::upgrade::OnUpgrade, seen: String, stop: CancellationToken) {
    let Ok(upgraded) = upgrade.await else {
        return;
    };
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    let session = async {
        ws.send(Message::text(seen)).await.ok()?;
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() || message.is_binary() {
                ws.send(message).await.ok()?;
            }
        }
        Some(())
    };
    tokio::select! {
        _ = session => {}
        () = stop.cancelled() => {}
    }
}
