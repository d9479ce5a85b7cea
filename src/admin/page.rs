//! Paged lists (tenants, usage): how many items a page holds, by default
//! and at most, and the check of a request's `limit`.

use super::error::ApiError;

/// Items per page when the request names no `limit`.
pub(super) const DEFAULT_PAGE: usize = 100;
/// The largest `limit` a list takes.
pub(super) const MAX_PAGE: usize = 1000;

/// The page size `limit` asks for: the default when absent, a 400 outside
/// 1 to [`MAX_PAGE`].
pub(super) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(limit)
}
