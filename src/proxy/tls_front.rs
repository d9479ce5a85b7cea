//! What the plain-HTTP listener answers itself when HTTPS is on: the ACME
//! HTTP-01 challenge answers, and (per config) a redirect to HTTPS for
//! everything else.

use http::header::{HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};

use super::respond::{self, ProxyBody};
use crate::tls::challenge::HTTP01_PREFIX;
use crate::tls::TlsFront;

/// A plain-HTTP request for an ACME HTTP-01 answer: its path and Host.
pub(super) struct ChallengeRequest {
    path: String,
    host: Option<String>,
}

/// The challenge request in `req`, if it is one.
pub(super) fn challenge_request<B>(req: &Request<B>) -> Option<ChallengeRequest> {
    let path = req.uri().path();
    if !path.starts_with(HTTP01_PREFIX) {
        return None;
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    Some(ChallengeRequest {
        path: path.to_owned(),
        host: host.map(str::to_owned),
    })
}

/// The gateway's answer to a challenge request; `None` proxies it (a token
/// we do not know: the app may run its own ACME client).
pub(super) async fn answer_challenge(
    tls: &TlsFront,
    req: &ChallengeRequest,
) -> Option<Response<ProxyBody>> {
    let answer = tls.http01_answer(&req.path, req.host.as_deref()).await?;
    Some(respond::text(StatusCode::OK, answer))
}

/// A redirect to HTTPS for any other plain-HTTP request, when configured.
pub(super) fn redirect<B>(tls: &TlsFront, req: &Request<B>) -> Option<Response<ProxyBody>> {
    if !tls.redirect_http {
        return None;
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let location = https_location(host, tls.https_port, req.uri().path_and_query()?.as_str());
    let location = HeaderValue::from_str(&location).ok()?;
    let mut response = respond::text(StatusCode::PERMANENT_REDIRECT, "use HTTPS\n");
    response.headers_mut().insert(LOCATION, location);
    Some(response)
}

/// `https://host[:port]/path?query`, the port left out when it is 443.
fn https_location(host: &str, https_port: u16, path_and_query: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(rest) => &host[..rest.find(']').map_or(host.len(), |end| end + 2)],
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if https_port == 443 {
        format!("https://{name}{path_and_query}")
    } else {
        format!("https://{name}:{https_port}{path_and_query}")
    }
}

#[cfg(test)]
mod tests {
    use super::https_location;

    #[test]
    fn redirect_keeps_host_and_path_and_swaps_the_port() {
        assert_eq!(
            https_location("shop.example.com:8080", 443, "/a?b=1"),
            "https://shop.example.com/a?b=1"
        );
        assert_eq!(
            https_location("shop.example.com", 8443, "/"),
            "https://shop.example.com:8443/"
        );
        assert_eq!(
            https_location("[::1]:8080", 8443, "/x"),
            "https://[::1]:8443/x"
        );
    }
}
