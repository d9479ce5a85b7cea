//! Admin API calls (with or without the bearer token) and `/metrics` reads.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use super::{eventually, Gateway, Reply};

impl Gateway {
    /// An admin request with the gateway's own token (if it has one).
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.options.token.clone();
        self.admin_as(token.as_deref(), method, path, body).await
    }

    /// An admin request presenting `token` (or no Authorization header).
    pub async fn admin_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let reply = self.admin_raw(token, method, path, body).await;
        let json = if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
                panic!("admin {path} answered non-JSON ({e}): {}", reply.text())
            })
        };
        (reply.status, json)
    }

    /// An admin request with a body sent as is (for malformed JSON).
    pub async fn admin_raw(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Reply {
        let authorization = token.map(|token| format!("Bearer {token}"));
        self.admin_authorized(authorization.as_deref(), method, path, body)
            .await
    }

    /// An admin request with `authorization` as the whole Authorization
    /// header (for other spellings of the scheme).
    pub async fn admin_authorized(
        &self,
        authorization: Option<&str>,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.admin_addr))
            .header("content-type", "application/json");
        if let Some(authorization) = authorization {
            req = req.header("authorization", authorization);
        }
        self.exchange(req.body(Full::new(body)).expect("admin request"))
            .await
    }

    /// An admin request with exactly these headers (a browser's `Origin`,
    /// a foreign `Host`, another `Content-Type`) and no others but the
    /// `Host` the client adds when none is given.
    pub async fn admin_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.admin_addr));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.exchange(req.body(Full::new(body.into())).expect("admin request"))
            .await
    }

    /// Creates a tenant and returns its JSON; panics unless the answer is 201.
    pub async fn create_tenant(&self, tenant: Value) -> Value {
        let (status, body) = self
            .admin(Method::POST, "/v1/tenants", Some(tenant.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating {tenant}: {body}");
        body
    }

    /// Routes `domain` to tenant `id`; panics unless the answer is 201.
    pub async fn add_domain(&self, id: &str, domain: &str) {
        let (status, body) = self
            .admin(
                Method::POST,
                &format!("/v1/tenants/{id}/domains"),
                Some(serde_json::json!({ "domain": domain })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "adding {domain} to {id}: {body}"
        );
    }

    /// Stops routing `domain`; panics unless the answer is 204.
    pub async fn remove_domain(&self, domain: &str) {
        let (status, body) = self
            .admin(Method::DELETE, &format!("/v1/domains/{domain}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "removing {domain}: {body}");
    }

    /// Sets a tenant's status (`active` or `suspended`); panics unless 200.
    pub async fn set_status(&self, id: &str, status: &str) {
        let (code, body) = self
            .patch_tenant(id, serde_json::json!({ "status": status }))
            .await;
        assert_eq!(code, StatusCode::OK, "setting {id} {status}: {body}");
    }

    /// `PATCH /v1/tenants/{id}` with `change`; the answer as it comes.
    pub async fn patch_tenant(&self, id: &str, change: Value) -> (StatusCode, Value) {
        self.admin(Method::PATCH, &format!("/v1/tenants/{id}"), Some(change))
            .await
    }

    /// `POST /v1/reload`: the gateway re-reads its config file.
    pub async fn reload(&self) -> (StatusCode, Value) {
        self.admin(Method::POST, "/v1/reload", None).await
    }

    /// The value of one Prometheus series, e.g.
    /// `tenant_gateway_requests_total{class="2xx",outcome="routed"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        self.metric_or(series, None).await
    }

    /// Waits (at most 5 s) until the change feed has applied `changes`
    /// logged changes: a write comes back through the feed to the gateway
    /// that made it too, and drops what it touched from the cache.
    pub async fn until_changes_applied(&self, changes: u64) {
        let what = format!("the change feed applied {changes} changes");
        eventually(std::time::Duration::from_secs(5), &what, || async {
            self.metric_or_zero("tenant_gateway_store_changes_applied_total")
                .await
                >= changes as f64
        })
        .await;
    }

    /// Like [`Gateway::metric`], but a series not (yet) exported reads as 0
    /// (labelled counters appear on their first increment).
    pub async fn metric_or_zero(&self, series: &str) -> f64 {
        self.metric_or(series, Some(0.0)).await
    }

    async fn metric_or(&self, series: &str, missing: Option<f64>) -> f64 {
        let reply = self
            .admin_raw(None, Method::GET, "/metrics", Bytes::new())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let text = reply.text();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .or(missing)
            .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{text}"))
    }

    /// A per-backend series of the `default` pool, e.g.
    /// `backend_metric("tenant_gateway_backend_healthy", &app.url)`.
    pub async fn backend_metric(&self, name: &str, backend_url: &str) -> f64 {
        self.metric(&format!(
            r#"{name}{{backend="{backend_url}",pool="default"}}"#
        ))
        .await
    }
}

/// Asserts an admin error: `expected` status and a JSON body
/// `{"error": {"code", "message"}}` with `code`. Returns the message.
pub fn api_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_owned()
}
