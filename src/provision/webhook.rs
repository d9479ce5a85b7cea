//! POSTing a JSON body to an `http://` URL within a deadline, for the
//! `hook webhook` provisioning step and the events webhook. A failure is
//! told as text naming the URL and what went wrong (status and body tail,
//! connection error, or timeout).

use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The last `max` bytes of `text` (at a character boundary), for errors.
pub(super) fn tail(text: &str, max: usize) -> &str {
    let text = text.trim();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A shared HTTP/1.1 client (connections are kept alive between posts).
#[derive(Clone)]
pub struct Poster {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Poster {
    fn default() -> Self {
        Poster {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Poster {
    /// POSTs `body`; `Ok` on a 2xx answer within `timeout`.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<(), String> {
        let request = http::Request::post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("{url}: {e}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let mut message = format!("{url}: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message += &format!(": {cause}");
                    source = cause.source();
                }
                message
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!(
                    "{url} answered {status}: {}",
                    tail(&String::from_utf8_lossy(&body), 500)
                ))
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
    }
}
