//! Request extractors whose rejections are our JSON errors rather than
//! axum's plain-text ones. Every admin handler takes its path, query and
//! body through these.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest JSON body (axum's default).
const MAX_JSON_BODY: usize = 2 * 1024 * 1024;
/// Largest text body: an import of about 5M CSV rows.
const MAX_TEXT_BODY: usize = 512 * 1024 * 1024;

/// A JSON body of at most [`MAX_JSON_BODY`] bytes; any content type is
/// accepted, bad JSON is a 400 saying why.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, MAX_JSON_BODY).await?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest("a JSON body is required".into()));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// A UTF-8 text body of at most [`MAX_TEXT_BODY`] bytes (CSV or NDJSON
/// imports); other bytes are a 400.
pub struct ApiText(pub String);

impl<S: Send + Sync> FromRequest<S> for ApiText {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, MAX_TEXT_BODY).await?;
        String::from_utf8(bytes.into())
            .map(ApiText)
            .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8 text: {e}")))
    }
}

/// The whole body; more than `limit` bytes is a 413 naming the limit.
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large =
                std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>());
            if too_large {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::BadRequest(format!("cannot read body: {e}"))
            }
        })
}

/// Refuses a `%00` in a raw path or query: no id, domain or host holds a
/// NUL, and PostgreSQL cannot even compare text with one.
fn refuse_nul(raw: &str, part: &str) -> Result<(), ApiError> {
    match raw.as_bytes().windows(3).any(|w| w == b"%00") {
        true => Err(ApiError::BadRequest(format!(
            "the {part} holds a NUL character (%00)"
        ))),
        false => Ok(()),
    }
}

/// Path parameters; ones that cannot be decoded (e.g. `%ff`, not UTF-8)
/// or hold a NUL are a 400 saying why.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        refuse_nul(parts.uri.path(), "path")?;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            // A route and handler that disagree on their parameters: our bug.
            Err(e) if e.status().is_server_error() => Err(ApiError::Internal(e.body_text())),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Query parameters; unknown, malformed or NUL-holding ones are a 400
/// saying why.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        refuse_nul(query, "query")?;
        serde_urlencoded_query(query).map(ApiQuery)
    }
}

fn serde_urlencoded_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::BadRequest("malformed query string".into()))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
}
