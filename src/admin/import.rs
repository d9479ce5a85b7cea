//! Bulk import of tenants from CSV or NDJSON, shared by
//! `POST /v1/tenants/import` and `tenant-gateway tenants import FILE`.
//! Rows are validated one by one, written in batches of one transaction
//! each, and bad rows are reported by line number without stopping the rest.
//!
//! CSV (read in `csv`): `id,schema,domain` (optionally
//! `name,isolation,status,pool,plan,cluster` after), with an optional
//! header line naming the columns in any order, and `column:NAME` for a
//! further column of a django-tenants tenant table. NDJSON: one tenant per
//! line, as in `POST /v1/tenants` (`columns` included).

use serde::Serialize;

use crate::provision::migrate::Progress;
use crate::store::{Store, StoreError};
use crate::tenant::spec::{SpecRules, TenantSpec};
use crate::tenant::NewTenant;

/// Tenants written per transaction: large, so commits (each a WAL sync and
/// about one checkpoint for the embedded store) are few (5,000 → 25,000:
/// see docs/performance.md), small enough that a batch holds the store's
/// write lock for about a second.
const BATCH: usize = 25_000;
/// Errors listed in a report; more are only counted.
const MAX_LISTED_ERRORS: usize = 1_000;
/// Up to this many imported domains are invalidated one by one.
const MAX_LISTED_DOMAINS: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub imported: usize,
    pub failed: usize,
    /// The first errors, by line number.
    pub errors: Vec<RowError>,
    /// Imported domains, when few enough to invalidate one by one; `None`
    /// means "many": the caller should invalidate the whole routing cache.
    #[serde(skip)]
    pub domains: Option<Vec<String>>,
}

impl ImportReport {
    fn reject(&mut self, line: usize, message: String) {
        self.failed += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(RowError { line, message });
        }
    }
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The CSV header is wrong, so no row can be read right.
    #[error("line {line}: {message}")]
    Header { line: usize, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An import file being read: its tenants (or bad rows) come one at a
/// time as the import asks for them, so a file of millions of rows is
/// never held parsed (and parsing overlaps the store's writes).
pub struct ParsedImport<'a> {
    rows: Box<dyn Iterator<Item = Parsed> + Send + 'a>,
    /// Data lines: how many tenants come, at most (one per line).
    lines: usize,
}

/// Reads the start of `text` (CSV or NDJSON); a bad header refuses it all,
/// so callers can read before they open or write anything. The rows are
/// parsed as they are taken.
pub fn read(text: &str) -> Result<ParsedImport<'_>, ImportError> {
    let lines = text.lines().filter(|l| is_data(l.trim())).count();
    let first = text.lines().map(str::trim).find(|l| is_data(l));
    let rows: Box<dyn Iterator<Item = Parsed> + Send + '_> = match first {
        Some(l) if l.starts_with('{') => Box::new(ndjson_rows(text)),
        _ => Box::new(csv::CsvRows::new(text)?),
    };
    Ok(ParsedImport { rows, lines })
}

impl ParsedImport<'_> {
    /// How many tenants there are at most: one per data line (a run of
    /// CSV rows with one id is one tenant, and a header is no tenant).
    pub fn len(&self) -> usize {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

impl Iterator for ParsedImport<'_> {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        self.rows.next()
    }
}

/// Imports what `read` made of a file, writing batch after batch;
/// `progress` is told how far it got after each batch (tenants done and
/// failed, out of `ParsedImport::len`).
pub async fn import(
    store: &dyn Store,
    parsed: ParsedImport<'_>,
    rules: &SpecRules,
    mut progress: impl FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        domains: Some(Vec::new()),
        ..ImportReport::default()
    };
    let lines = parsed.len();
    let mut tell = |report: &ImportReport, last: bool| {
        let done = report.imported + report.failed;
        progress(Progress {
            // Data lines until the end, when the count is known.
            total: if last { done } else { lines.max(done) },
            done,
            failed: report.failed,
        })
    };
    let mut rows = parsed;
    let mut batch = validated(&mut rows, rules, &mut report);
    while !batch.is_empty() {
        // The next batch is validated while the store writes this one
        // (on its own thread, for the embedded store).
        let (lines, tenants): (Vec<usize>, Vec<NewTenant>) = batch.into_iter().unzip();
        // Only while they may still be listed (a few): cloning is not free.
        let domains: Vec<Vec<String>> = match report.domains {
            Some(_) => tenants.iter().map(|t| t.domains.clone()).collect(),
            None => Vec::new(),
        };
        let (rejected, next) = tokio::join!(store.import_tenants(tenants), async {
            validated(&mut rows, rules, &mut report)
        });
        account(&lines, domains, rejected?, &mut report);
        tell(&report, false);
        batch = next;
    }
    tell(&report, true);
    Ok(report)
}

/// The next `BATCH` valid tenants of `rows`, bad rows reported on the way.
fn validated(
    rows: &mut impl Iterator<Item = Parsed>,
    rules: &SpecRules,
    report: &mut ImportReport,
) -> Vec<(usize, NewTenant)> {
    let mut batch = Vec::with_capacity(BATCH);
    for (line, parsed) in rows.by_ref() {
        match parsed.and_then(|spec| spec.validate(rules).map_err(|e| e.message)) {
            Ok(tenant) => batch.push((line, tenant)),
            Err(message) => report.reject(line, message),
        }
        if batch.len() == BATCH {
            break;
        }
    }
    batch
}

/// Counts a written batch: the store's rejected rows by line, the others
/// imported (and their domains listed while few).
fn account(
    lines: &[usize],
    domains: Vec<Vec<String>>,
    rejected: Vec<(usize, StoreError)>,
    report: &mut ImportReport,
) {
    let mut rejected_at = vec![false; lines.len()];
    for (index, error) in rejected {
        rejected_at[index] = true;
        report.reject(lines[index], error.to_string());
    }
    report.imported += rejected_at.iter().filter(|r| !**r).count();
    for (tenant_domains, rejected) in domains.into_iter().zip(rejected_at) {
        let Some(listed) = &mut report.domains else {
            break;
        };
        if !rejected {
            listed.extend(tenant_domains);
            if listed.len() > MAX_LISTED_DOMAINS {
                report.domains = None;
            }
        }
    }
}

/// A tenant with the line it starts on, or why that line is a bad row.
type Parsed = (usize, Result<TenantSpec, String>);

/// A line that holds a row: neither blank nor a `#` comment.
fn is_data(trimmed: &str) -> bool {
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// NDJSON: a tenant per data line, as in `POST /v1/tenants`.
fn ndjson_rows(text: &str) -> impl Iterator<Item = Parsed> + Send + '_ {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, l)| {
            (
                line,
                serde_json::from_str::<TenantSpec>(l).map_err(|e| format!("invalid JSON: {e}")),
            )
        })
}

mod csv;
#[cfg(test)]
mod tests;
