//! Searching the registry for tenants by a piece of text: what matches (a
//! tenant's id, name or schema, or one of its domains, containing the text
//! case-insensitively), the `LIKE` pattern the SQL stores match it with, and
//! the fallback for a store without a query of its own.

use super::{Store, StoreError};
use crate::tenant::TenantRecord;

/// Tenants read per `list_tenants` call by the fallback search.
const PAGE: usize = 1000;

/// The escape character of [`like_pattern`]: not a backslash, which a
/// PostgreSQL server with `standard_conforming_strings = off` would read as
/// escaping the literal's closing quote.
pub const LIKE_ESCAPE: char = '!';

/// The SQL stores' `ESCAPE` clause for [`like_pattern`]'s patterns.
pub const ESCAPE_CLAUSE: &str = "ESCAPE '!'";

/// A `LIKE`/`ILIKE` pattern matching values that contain `text`: `%` and
/// `_` (and the escape character itself) are escaped, so they match only
/// themselves.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Whether `record` matches a search for `text`, as PostgreSQL's `ILIKE`
/// decides it (SQLite's `LIKE` folds the case of ASCII letters only).
pub fn matches(record: &TenantRecord, text: &str) -> bool {
    let text = text.to_lowercase();
    let has = |value: &str| value.to_lowercase().contains(&text);
    let t = &record.tenant;
    has(&t.id) || has(&t.name) || has(&t.schema) || record.domains.iter().any(|d| has(&d.domain))
}

/// The fallback `Store::search_tenants`: `list_tenants` page after page
/// from `after`, filtered, until `limit` matches or the end. It reads every
/// tenant after `after` when few match: for stores without a query of their own.
pub async fn by_pages<S: Store + ?Sized>(
    store: &S,
    text: &str,
    mut after: Option<String>,
    limit: usize,
) -> Result<Vec<TenantRecord>, StoreError> {
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    loop {
        let page = store.list_tenants(after.take(), PAGE).await?;
        let last = page.len() < PAGE;
        after = page.last().map(|r| r.tenant.id.clone());
        for record in page {
            if matches(&record, text) {
                found.push(record);
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if last {
            return Ok(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_the_wildcards_and_the_escape() {
        assert_eq!(like_pattern("acme"), "%acme%");
        assert_eq!(like_pattern("50%_off"), "%50!%!_off%");
        assert_eq!(like_pattern("a!b\\c"), "%a!!b\\c%");
        assert_eq!(like_pattern(""), "%%");
    }
}
