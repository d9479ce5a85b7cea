//! `/v1/tenants/{id}/usage` and `/v1/usage`: the usage counters per tenant
//! per hour (see docs/usage.md). With metering on, a read first flushes
//! this replica's counts, so what it answers includes every request this
//! replica has finished; other replicas' counts are there up to their last
//! flush. The billing export is [`super::usage_export`].

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::page::page_limit;
use super::AdminState;
use crate::store::{UsageQuery, UsageRow};

/// The longest range one tenant's usage is read for at once.
const MAX_TENANT_RANGE_HOURS: i64 = 366 * 24;

/// One tenant's counts for one hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageHour {
    /// The hour's start (UTC, RFC 3339).
    #[schema(example = "2026-12-02T09:00:00Z")]
    pub hour: String,
    pub requests: u64,
    /// Request body bytes read from clients.
    pub bytes_in: u64,
    /// Response body bytes sent to clients.
    pub bytes_out: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Time backends spent on these requests, from forward to response end.
    pub upstream_seconds: f64,
}

impl UsageHour {
    pub fn from_row(row: &UsageRow) -> UsageHour {
        let c = &row.counts;
        UsageHour {
            hour: hour_text(row.hour),
            requests: c.requests,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            status_4xx: c.status_4xx,
            status_5xx: c.status_5xx,
            upstream_seconds: c.upstream_micros as f64 / 1e6,
        }
    }
}

/// The hour starting at `unix` as RFC 3339 (`2026-12-02T09:00:00Z`).
pub fn hour_text(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantUsage {
    pub tenant: String,
    pub hours: Vec<UsageHour>,
}

/// The range of a usage read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// The first hour: RFC 3339 or a date (`2026-12-01`, midnight UTC),
    /// counted from the start of its hour (default: 24 hours ago).
    from: Option<String>,
    /// The end, exclusive: hours starting at or after it are left out
    /// (default: the end of the current hour).
    to: Option<String>,
}

/// `from` and `to` as Unix seconds: `from` floored to its hour, `to` as
/// given (an hour is read when it starts in `from..to`).
pub fn range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let now = crate::clock::unix_now();
    let current_hour = now.div_euclid(3600) * 3600;
    let from = match from {
        Some(text) => time_param("from", text)?,
        None => current_hour - 24 * 3600,
    };
    let to = match to {
        Some(text) => time_param("to", text)?,
        None => current_hour + 3600,
    };
    let from = from.div_euclid(3600) * 3600;
    if to <= from {
        return Err(ApiError::BadRequest(
            "to: must be after from (to is exclusive)".into(),
        ));
    }
    Ok((from, to))
}

/// An RFC 3339 time or a `YYYY-MM-DD` date (UTC midnight), as Unix seconds.
fn time_param(name: &str, text: &str) -> Result<i64, ApiError> {
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        _ => text.to_owned(),
    };
    let parsed = OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name}: '{text}' is not an RFC 3339 time (2026-12-02T09:00:00Z) or a date (2026-12-02)"
        ))
    })?;
    let unix = parsed.unix_timestamp();
    // The years PostgreSQL's timestamps and our formatting both hold.
    if !(0..=253_402_300_799).contains(&unix) {
        return Err(ApiError::BadRequest(format!(
            "{name}: '{text}' is outside the years 1970 to 9999"
        )));
    }
    Ok(unix)
}

impl AdminState {
    /// The rows `query` selects; with metering on, after flushing this
    /// replica's counts.
    pub(super) async fn usage_rows(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, ApiError> {
        Ok(match &self.usage {
            Some(flusher) => flusher.read(query).await?,
            None => self.store.read_usage(query).await?,
        })
    }
}

/// One tenant's usage by hour
///
/// Hours that start in `from..to`, oldest first. Includes what this
/// replica counted up to now; other replicas' counts up to their last
/// flush (`usage.flush_interval`).
#[utoipa::path(get, path = "/tenants/{id}/usage", operation_id = "tenant_usage", tag = "usage",
    params(("id" = String, Path, description = "The tenant's id"), RangeQuery),
    responses(
        (status = 200, description = "The tenant's hours", body = TenantUsage),
        (status = 404, description = "No such tenant, and no usage", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn tenant(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Json<TenantUsage>, ApiError> {
    let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
    if to - from > MAX_TENANT_RANGE_HOURS * 3600 {
        return Err(ApiError::BadRequest(format!(
            "to: at most {MAX_TENANT_RANGE_HOURS} hours after from (read longer ranges with GET /v1/usage/export)"
        )));
    }
    let query = UsageQuery {
        tenant: Some(id.clone()),
        from,
        to,
        after: None,
        limit: MAX_TENANT_RANGE_HOURS as usize + 1,
    };
    let rows = state.usage_rows(&query).await?;
    if rows.is_empty() && state.store.get_tenant(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("tenant '{id}' not found")));
    }
    Ok(Json(TenantUsage {
        tenant: id,
        hours: rows.iter().map(UsageHour::from_row).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// As for one tenant.
    from: Option<String>,
    /// As for one tenant.
    to: Option<String>,
    /// Rows per page (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// One tenant's counts for one hour, in a page of all tenants'.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantHour {
    tenant: String,
    #[serde(flatten)]
    usage: UsageHour,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsagePage {
    usage: Vec<TenantHour>,
    /// Pass as `after` to get the next page; `null` on the last page.
    next: Option<String>,
}

/// Every tenant's usage, a page at a time
///
/// Rows by tenant id, then hour; the range and what is included as for
/// one tenant.
#[utoipa::path(get, path = "/usage", operation_id = "list_usage", tag = "usage",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tenants' hours", body = UsagePage),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<UsagePage>, ApiError> {
    let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
    let limit = page_limit(query.limit)?;
    let after = query.after.as_deref().map(page_token).transpose()?;
    let query = UsageQuery {
        tenant: None,
        from,
        to,
        after,
        limit,
    };
    let rows = state.usage_rows(&query).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| format!("{}@{}", r.tenant, r.hour)))
        .flatten();
    let usage = rows
        .iter()
        .map(|row| TenantHour {
            tenant: row.tenant.clone(),
            usage: UsageHour::from_row(row),
        })
        .collect();
    Ok(Json(UsagePage { usage, next }))
}

/// A page's `next`: `TENANT@HOUR` (Unix seconds).
fn page_token(token: &str) -> Result<(String, i64), ApiError> {
    token
        .rsplit_once('@')
        .and_then(|(tenant, hour)| Some((tenant.to_owned(), hour.parse().ok()?)))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "after: '{token}' is not the next of a previous page"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_is_floored_to_its_hour_and_a_date_is_midnight() {
        let (from, to) = range(Some("2026-12-02T09:30:00+00:00"), Some("2026-12-03")).unwrap();
        assert_eq!(hour_text(from), "2026-12-02T09:00:00Z");
        assert_eq!(hour_text(to), "2026-12-03T00:00:00Z");
    }

    #[test]
    fn a_bad_time_names_its_parameter() {
        for (from, to, named) in [
            (Some("yesterday"), None, "from:"),
            (None, Some("2026-13-01"), "to:"),
            (Some("2026-12-02"), Some("2026-12-01"), "to:"),
        ] {
            let err = range(from, to).unwrap_err().to_string();
            assert!(err.starts_with(named), "{err}");
        }
        assert!(page_token("acme")
            .unwrap_err()
            .to_string()
            .starts_with("after:"));
        assert_eq!(page_token("a@b@7").unwrap(), ("a@b".to_owned(), 7));
    }
}
