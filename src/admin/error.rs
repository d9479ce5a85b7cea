//! The one place that maps control-plane errors to HTTP: a status and a JSON
//! body `{"error": {"code", "message"}}` ([`ErrorBody`], described in the
//! OpenAPI spec). A 500 `internal` answers only an `error_id`; what went
//! wrong (an SQL error names tables and columns) goes to the log under that
//! id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

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

/// Every error answer of the admin API: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
    /// The provisioning step that failed (`provisioning_failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The browser rule that refused the request: `host` or `origin`
    /// (`forbidden` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// The values the store cannot take (`unprocessable_entity` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Finds the cause in the gateway's log (`internal`, and
    /// `provisioning_failed` at a step of the registry's own SQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

/// The machine-readable kind of an error; each goes with one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400
    BadRequest,
    /// 401, with `WWW-Authenticate: Bearer`
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409
    Conflict,
    /// 413
    PayloadTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 422, with `columns`
    UnprocessableEntity,
    /// 500, with `error_id`
    Internal,
    /// 500: provisioning failed at `step` and was undone
    ProvisioningFailed,
    /// 503
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnprocessableEntity => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Internal | ErrorCode::ProvisioningFailed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::Forbidden { .. } => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Unprocessable { .. } => ErrorCode::UnprocessableEntity,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::Provisioning { .. } | ApiError::ProvisioningInternal { .. } => {
                ErrorCode::ProvisioningFailed
            }
        }
    }

    /// The answer's body; an internal error's cause is logged under the
    /// `error_id` it carries instead.
    fn body(&self) -> ErrorBody {
        let mut detail = ErrorDetail {
            code: self.code(),
            message: self.to_string(),
            step: None,
            rule: None,
            columns: None,
            error_id: None,
        };
        match self {
            ApiError::Internal(_) | ApiError::ProvisioningInternal { .. } => {
                let error_id = new_error_id();
                tracing::error!(%error_id, error = %self, "admin request failed");
                detail.message =
                    format!("internal error (error id {error_id} in the gateway's log)");
                detail.error_id = Some(error_id);
            }
            _ if detail.code.status().is_server_error() => {
                tracing::error!(error = %self, "admin request failed")
            }
            _ => {}
        }
        match self {
            ApiError::Provisioning { step, .. } | ApiError::ProvisioningInternal { step, .. } => {
                detail.step = Some(step.clone())
            }
            ApiError::Forbidden { rule, .. } => detail.rule = Some(rule),
            ApiError::Unprocessable { columns, .. } => detail.columns = Some(columns.clone()),
            _ => {}
        }
        ErrorBody { error: detail }
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
            // Nothing was made: a leftover of the same name is in the way.
            ProvisionFailure::Exists(message) => ApiError::Conflict(format!(
                "{}: {message}: register it with \"provision\": false, or drop it first",
                err.step
            )),
            ProvisionFailure::Missing(message) => ApiError::Conflict(format!(
                "{}: {message}: the tenant was registered without it; create it, or delete the tenant and create it with provisioning",
                err.step
            )),
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
        let status = self.code().status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
