//! Refuses requests a browser was tricked into sending. The admin API may
//! run without a token on loopback, so any page the operator opens could
//! otherwise reach it:
//! - **Host** (every path): only loopback names, the listener's own address
//!   and `admin.allowed_hosts` are answered, which defeats DNS rebinding
//!   (the browser then sends the attacker's name as `Host`).
//! - **Origin** (all but plain reads of health and metrics): a request that
//!   carries one is served only for `admin.allowed_origins` or the
//!   listener's own origin (the console), which defeats cross-site forgery.
//! - **JSON only**: a `/v1` body must be `application/json` (imports may
//!   also say CSV or NDJSON), types a cross-origin page cannot send without
//!   a CORS preflight; preflights get a CORS grant only for allowed origins.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AdminState;
use crate::config::{split_host_port, AdminConfig};

/// The local address a connection was accepted on, set per connection by
/// the listener: a wildcard listener (`0.0.0.0:9090`) is also reached
/// under the address the client dialled, e.g. by a Kubernetes probe.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Which `Host` and `Origin` values the admin listener answers.
#[derive(Debug, Clone)]
pub struct AccessRules {
    listen: SocketAddr,
    /// `admin.allowed_hosts`, lowercase, with the port if one was given.
    hosts: Vec<(String, Option<u16>)>,
    /// `admin.allowed_origins`, lowercase.
    origins: Vec<String>,
}

/// Body types `/v1` accepts: JSON, and for imports the text formats they parse.
const JSON: &str = "application/json";
const IMPORT_TYPES: [&str; 3] = [JSON, "text/csv", "application/x-ndjson"];

impl AccessRules {
    /// The rules of a validated `admin` config section.
    pub fn new(admin: &AdminConfig) -> AccessRules {
        let hosts = admin
            .allowed_hosts
            .iter()
            .filter_map(|h| {
                split_host_port(h).map(|(host, port)| (host.to_ascii_lowercase(), port))
            })
            .collect();
        let origins = admin
            .allowed_origins
            .iter()
            .map(|o| o.to_ascii_lowercase())
            .collect();
        AccessRules {
            listen: admin.listen,
            hosts,
            origins,
        }
    }

    /// Whether a request with this `Host` value, on a connection accepted
    /// on `local`, is for this listener.
    pub fn host_allowed(&self, value: &str, local: Option<SocketAddr>) -> bool {
        let Some((host, port)) = split_host_port(value) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        let own = |addr: SocketAddr| ip == Some(addr.ip()) && port.is_none_or(|p| p == addr.port());
        if own(self.listen) || local.is_some_and(own) {
            return true;
        }
        self.hosts
            .iter()
            .any(|(name, want)| *name == host && want.is_none_or(|w| port == Some(w)))
    }

    /// Whether a browser request from `origin` may be served: a listed
    /// origin, or this listener's own (`http://` + the already checked Host).
    pub fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.contains(&origin)
            || origin
                .strip_prefix("http://")
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
    }
}

/// Applies the three rules before any handler (and before the token check,
/// so a foreign Host is told so rather than asked for a token).
pub async fn check(State(state): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let rules = &state.access;
    let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
    let host = request_host(&req);
    if !host.is_some_and(|h| rules.host_allowed(h, local)) {
        return ApiError::Forbidden {
            rule: "host",
            message: format!(
                "Host '{}' is not this admin listener's: use a loopback name or its address, or add the name to admin.allowed_hosts",
                host.unwrap_or_default()
            ),
        }
        .into_response();
    }
    let host = host.unwrap_or_default().to_owned();

    let origin = req.headers().get(header::ORIGIN).cloned();
    let open_read = matches!(*req.method(), Method::GET | Method::HEAD)
        && matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics");
    if let (Some(origin), false) = (&origin, open_read) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| rules.origin_allowed(o, &host));
        if !allowed {
            return ApiError::Forbidden {
                rule: "origin",
                message: format!(
                    "requests from origin '{}' are not allowed: add it to admin.allowed_origins",
                    String::from_utf8_lossy(origin.as_bytes())
                ),
            }
            .into_response();
        }
        if is_preflight(&req) {
            return grant_cors(StatusCode::NO_CONTENT.into_response(), origin, true);
        }
    }

    if req.uri().path().starts_with("/v1/") && has_body(req.headers()) {
        let accepted: &[&str] = if req.uri().path() == "/v1/tenants/import" {
            &IMPORT_TYPES
        } else {
            &[JSON]
        };
        if !content_type_is(req.headers(), accepted) {
            return ApiError::UnsupportedMediaType(format!(
                "the request body must be sent as Content-Type: {}",
                accepted.join(", ")
            ))
            .into_response();
        }
    }

    let response = next.run(req).await;
    match origin {
        Some(origin) if !open_read => grant_cors(response, &origin, false),
        _ => response,
    }
}

/// The `Host` header, or the authority of an absolute-form target.
fn request_host(req: &Request) -> Option<&str> {
    match req.headers().get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Whether the request announces a body (a bodiless POST such as
/// `/v1/reload` needs no content type).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Whether the media type (parameters such as `charset` aside) is one of `accepted`.
fn content_type_is(headers: &HeaderMap, accepted: &[&str]) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or_default().trim();
    accepted.iter().any(|a| media_type.eq_ignore_ascii_case(a))
}

/// Adds the CORS grant for an allowed `origin` (and, on a preflight, what
/// the actual request may use).
fn grant_cors(mut response: Response, origin: &HeaderValue, preflight: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(hosts: &[&str], origins: &[&str]) -> AccessRules {
        AccessRules::new(&AdminConfig {
            listen: "0.0.0.0:9090".parse().unwrap(),
            token: None,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
        })
    }

    #[test]
    fn loopback_names_and_own_addresses_are_this_listeners() {
        let rules = rules(&[], &[]);
        let local = Some("10.1.2.3:9090".parse().unwrap());
        for host in [
            "localhost",
            "LOCALHOST:9090",
            "127.0.0.1",
            "127.0.0.1:1234",
            "[::1]:9090",
            "10.1.2.3",
            "10.1.2.3:9090",
        ] {
            assert!(rules.host_allowed(host, local), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:9090",
            "10.1.2.3:9091",
            "10.9.9.9",
            "",
            "localhost.attacker.example",
        ] {
            assert!(!rules.host_allowed(host, local), "{host}");
        }
    }

    #[test]
    fn allowed_hosts_match_by_name_and_optional_port() {
        let rules = rules(&["admin.internal", "lb.internal:8443"], &[]);
        assert!(rules.host_allowed("Admin.Internal:9090", None));
        assert!(rules.host_allowed("lb.internal:8443", None));
        assert!(!rules.host_allowed("lb.internal", None));
        assert!(!rules.host_allowed("lb.internal:9090", None));
    }

    #[test]
    fn only_listed_or_own_origins_are_served() {
        let rules = rules(&[], &["https://console.example.com"]);
        assert!(rules.origin_allowed("https://console.example.com", "localhost:9090"));
        assert!(rules.origin_allowed("http://localhost:9090", "localhost:9090"));
        assert!(!rules.origin_allowed("http://attacker.example", "localhost:9090"));
        assert!(!rules.origin_allowed("null", "localhost:9090"));
        assert!(!rules.origin_allowed("https://localhost:9090", "localhost:9090"));
    }

    #[test]
    fn content_types_are_compared_without_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(content_type_is(&headers, &[JSON]));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!content_type_is(&headers, &IMPORT_TYPES));
        headers.remove(header::CONTENT_TYPE);
        assert!(!content_type_is(&headers, &[JSON]));
    }
}
