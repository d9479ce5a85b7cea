//! A tiny backend that answers every request with JSON describing what it
//! received (method, path, headers, body size). `?sleep_ms=N` delays the
//! answer, for drain and timeout tests. Shared by `examples/echo_backend.rs`
//! and the integration-test harness.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Serves echo responses on `listener` forever, tagging each with `name`.
pub async fn serve_echo(listener: TcpListener, name: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| echo(req, name.clone()));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn echo(req: Request<Incoming>, name: String) -> Result<Response<Full<Bytes>>, Infallible> {
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
    let body_bytes = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    if let Some(ms) = sleep_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let body = serde_json::json!({
        "backend": name,
        "method": method,
        "path": path,
        "headers": headers,
        "body_bytes": body_bytes,
    });
    let mut response = Response::new(Full::new(Bytes::from(format!("{body:#}\n"))));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
