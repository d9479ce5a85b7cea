//! `GET /v1/usage/export`: every tenant's usage in a range as NDJSON or
//! CSV for billing, streamed a store page at a time (a million tenants'
//! month never sits in memory whole).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::usage::{hour_text, range};
use super::AdminState;
use crate::store::{UsageQuery, UsageRow};

/// Rows read from the store per page of the export.
const EXPORT_PAGE: usize = 5000;

/// The CSV export's header line.
pub const CSV_HEADER: &str =
    "tenant,hour,requests,bytes_in,bytes_out,status_4xx,status_5xx,upstream_seconds\n";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// As for one tenant's usage.
    from: Option<String>,
    /// As for one tenant's usage.
    to: Option<String>,
    /// `ndjson` (default) or `csv`.
    format: Option<String>,
}

/// The export's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text {
            "ndjson" => Some(ExportFormat::Ndjson),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    /// One row as a line of this format.
    pub fn line(self, row: &UsageRow, out: &mut String) {
        let c = &row.counts;
        let seconds = c.upstream_micros as f64 / 1e6;
        let hour = hour_text(row.hour);
        match self {
            ExportFormat::Ndjson => {
                let value = serde_json::json!({
                    "tenant": row.tenant, "hour": hour, "requests": c.requests,
                    "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
                    "status_4xx": c.status_4xx, "status_5xx": c.status_5xx,
                    "upstream_seconds": seconds,
                });
                out.push_str(&value.to_string());
            }
            // Tenant ids are slugs: nothing to quote.
            ExportFormat::Csv => out.push_str(&format!(
                "{},{hour},{},{},{},{},{},{seconds}",
                row.tenant, c.requests, c.bytes_in, c.bytes_out, c.status_4xx, c.status_5xx
            )),
        }
        out.push('\n');
    }
}

/// Export every tenant's usage for billing
///
/// NDJSON (one object per tenant and hour, the fields of `GET /v1/usage`)
/// or CSV (with a header line), ordered by tenant then hour, streamed. The
/// range and what is included as for one tenant.
#[utoipa::path(get, path = "/usage/export", operation_id = "export_usage", tag = "usage",
    params(ExportQuery),
    responses(
        (status = 200, description = "The rows", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn export(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
    let format = match query.format.as_deref() {
        None => ExportFormat::Ndjson,
        Some(text) => ExportFormat::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!("format: '{text}' is neither ndjson nor csv"))
        })?,
    };
    let mut page = UsageQuery {
        tenant: None,
        from,
        to,
        after: None,
        limit: EXPORT_PAGE,
    };
    // The first page is read before answering, so a store that is down is
    // a 503, not a 200 cut short.
    let first = state.usage_rows(&page).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut rows = first;
        let mut text = String::new();
        if format == ExportFormat::Csv {
            text.push_str(CSV_HEADER);
        }
        loop {
            for row in &rows {
                format.line(row, &mut text);
            }
            let full = rows.len() == EXPORT_PAGE;
            if tx
                .send(Bytes::from(std::mem::take(&mut text)))
                .await
                .is_err()
                || !full
            {
                return;
            }
            page.after = rows.last().map(|r| (r.tenant.clone(), r.hour));
            rows = match state.store.read_usage(&page).await {
                Ok(rows) => rows,
                Err(e) => {
                    // The client sees the body end early (no final chunk).
                    tracing::warn!(error = %e, "usage export broke off");
                    return;
                }
            };
        }
    });
    let mut response = Body::new(Chunks(rx)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

/// A body of the chunks a task sends.
struct Chunks(mpsc::Receiver<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}
