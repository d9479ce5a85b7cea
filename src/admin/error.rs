//! The one place that maps control-plane errors to HTTP: a status and a JSON
//! body `{"error": {"code", "message"}}`. A 500 `internal` answers only an
//! `error_id`; what went wrong (an SQL error names tables and columns) goes
//! to the log under that id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::import::ImportError;
use crate::provision::{ProvisionError, ProvisionFailure};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// Refused by one of the admin listener's browser rules (`host`, `origin`).
    #[error("{message}")]
    Forbidden { rule: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    /// Values the store cannot write (`columns` names the ones at fault).
    #[error("{message}")]
    Unprocessable {
        message: String,
        columns: Vec<String>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// Provisioning failed at `step`; everything it did was undone.
    #[error("{message}")]
    Provisioning { step: String, message: String },
    /// Provisioning failed at a step of the registry's own SQL: answered
    /// with the step and an error id, the detail only logged.
    #[error("{step}: {detail}")]
    ProvisioningInternal { step: String, detail: String },
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unprocessable { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Provisioning { .. } | ApiError::ProvisioningInternal { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "provisioning_failed")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound { .. } => ApiError::NotFound(err.to_string()),
            StoreError::Conflict { what, key } => ApiError::Conflict(format!(
                "{} with {} '{key}' already exists",
                conflict_subject(what),
                what_name(what)
            )),
            StoreError::Unavailable(_) => ApiError::Unavailable(err.to_string()),
            StoreError::Unsupported(_) => ApiError::BadRequest(err.to_string()),
            StoreError::Unprocessable { message, columns } => {
                ApiError::Unprocessable { message, columns }
            }
            StoreError::Backend(_) => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(err: ProvisionError) -> ApiError {
        match err.source {
            // A refusal of the registry (conflict, outage) keeps its own answer.
            ProvisionFailure::Store(e) if err.step == "register" || err.step == "connect" => {
                e.into()
            }
            // A conflict found later (a schema that exists without a tenant).
            ProvisionFailure::Store(e @ StoreError::Conflict { .. }) => e.into(),
            // The registry's own failures name its tables: logged, not answered.
            ProvisionFailure::Store(StoreError::Backend(detail)) => {
                ApiError::ProvisioningInternal {
                    step: err.step,
                    detail,
                }
            }
            ProvisionFailure::Sql(detail) if REGISTRY_STEPS.contains(&err.step.as_str()) => {
                ApiError::ProvisioningInternal {
                    step: err.step,
                    detail,
                }
            }
            ProvisionFailure::Store(StoreError::Unavailable(message)) => {
                ApiError::Unavailable(format!("{}: {message}", err.step))
            }
            source => ApiError::Provisioning {
                step: err.step,
                message: source.to_string(),
            },
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(err: ImportError) -> ApiError {
        match err {
            ImportError::Header { .. } => ApiError::BadRequest(err.to_string()),
            ImportError::Store(e) => e.into(),
        }
    }
}

/// Provisioning steps that run the registry's SQL rather than the operator's
/// (migrations, content, hooks): their errors are answered as `internal`.
const REGISTRY_STEPS: [&str; 4] = ["connect", "begin", "register", "commit"];

/// A new id for one internal error, to find its log line by.
fn new_error_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// "Tenant with ID 'acme' already exists", as the seed's CLI says it.
fn conflict_subject(what: &str) -> &'static str {
    match what {
        "domain" => "Domain",
        _ => "Tenant",
    }
}

fn what_name(what: &str) -> &str {
    match what {
        "tenant" => "ID",
        "domain" => "name",
        other => other,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body = json!({ "error": { "code": code, "message": self.to_string() } });
        match &self {
            ApiError::Internal(_) | ApiError::ProvisioningInternal { .. } => {
                let error_id = new_error_id();
                tracing::error!(%error_id, error = %self, "admin request failed");
                body["error"]["message"] = json!(format!(
                    "internal error (error id {error_id} in the gateway's log)"
                ));
                body["error"]["error_id"] = json!(error_id);
            }
            _ if status.is_server_error() => {
                tracing::error!(error = %self, "admin request failed")
            }
            _ => {}
        }
        match &self {
            ApiError::Provisioning { step, .. } | ApiError::ProvisioningInternal { step, .. } => {
                body["error"]["step"] = json!(step)
            }
            ApiError::Forbidden { rule, .. } => body["error"]["rule"] = json!(rule),
            ApiError::Unprocessable { columns, .. } => body["error"]["columns"] = json!(columns),
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
