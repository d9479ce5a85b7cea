//! Bulk import of tenants from CSV or NDJSON, shared by
//! `POST /v1/tenants/import` and `tenant-gateway tenants import FILE`.
//! Rows are validated one by one, written in batches of one transaction
//! each, and bad rows are reported by line number without stopping the rest.
//!
//! CSV: `id,schema,domain` (optionally `name,isolation,status,pool,plan,cluster`
//! after),
//! with an optional header line naming the columns in any order (a first
//! line that starts with `id` or names two columns or more is one; an
//! unknown or repeated column refuses the whole import). Rows with the same id on consecutive lines add domains to
//! one tenant; one whose other fields differ from the first row's is a bad row.
//! NDJSON: one tenant per line, as in `POST /v1/tenants`.

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
        _ => Box::new(CsvRows::new(text)?),
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

const DEFAULT_COLUMNS: [&str; 9] = [
    "id",
    "schema",
    "domain",
    "name",
    "isolation",
    "status",
    "pool",
    "plan",
    "cluster",
];

/// CSV rows as tenants: consecutive rows with one id are one tenant,
/// given once its last row is read.
struct CsvRows<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    columns: Vec<&'static str>,
    /// The tenant whose rows are being read, with the line it starts on.
    open: Option<(usize, TenantSpec)>,
    /// Bad rows read while a tenant is open: given after it, in line order.
    after_open: Vec<Parsed>,
    /// What is ready to be given, in order.
    ready: std::collections::VecDeque<Parsed>,
}

impl<'a> CsvRows<'a> {
    /// Reads the header, if the first data line is one (a bad header
    /// refuses the import).
    fn new(text: &'a str) -> Result<Self, ImportError> {
        let mut lines = text.lines().enumerate();
        let mut columns: Vec<&'static str> = DEFAULT_COLUMNS.to_vec();
        let mut ahead = lines.clone();
        while let Some((i, raw)) = ahead.next() {
            let raw = raw.trim();
            if !is_data(raw) {
                continue;
            }
            if let Ok(fields) = split_csv(raw) {
                if looks_like_header(&fields) {
                    columns = header(&fields).map_err(|message| ImportError::Header {
                        line: i + 1,
                        message,
                    })?;
                    lines = ahead;
                }
            }
            break;
        }
        Ok(CsvRows {
            lines,
            columns,
            open: None,
            after_open: Vec::new(),
            ready: Default::default(),
        })
    }

    /// Gives the open tenant (then the bad rows read after it), and opens
    /// `next` in its place.
    fn close(&mut self, next: Option<(usize, TenantSpec)>) {
        if let Some((line, spec)) = std::mem::replace(&mut self.open, next) {
            self.ready.push_back((line, Ok(spec)));
        }
        self.ready.extend(self.after_open.drain(..));
    }

    /// A bad row: after the open tenant, if one is.
    fn bad(&mut self, line: usize, message: String) {
        match self.open {
            Some(_) => self.after_open.push((line, Err(message))),
            None => self.ready.push_back((line, Err(message))),
        }
    }

    fn take_row(&mut self, line: usize, raw: &str) {
        let fields = match split_csv(raw) {
            Ok(fields) => fields,
            Err(e) => return self.bad(line, e),
        };
        if fields.len() > self.columns.len() {
            let message = format!(
                "{} fields, expected at most {}",
                fields.len(),
                self.columns.len()
            );
            return self.bad(line, message);
        }
        let (mut spec, domain) = row(&self.columns, fields);
        match &mut self.open {
            Some((first_line, first)) if first.id == spec.id => {
                let conflicts = conflicting_fields(first, &spec);
                if conflicts.is_empty() {
                    first.domains.extend(domain);
                } else {
                    let message = format!(
                        "line {first_line} gives tenant '{}' a different {}: a repeated row may only add a domain",
                        spec.id,
                        conflicts.join(", ")
                    );
                    self.after_open.push((line, Err(message)));
                }
            }
            _ => {
                spec.domains.extend(domain);
                self.close(Some((line, spec)));
            }
        }
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        loop {
            if let Some(ready) = self.ready.pop_front() {
                return Some(ready);
            }
            let Some((i, raw)) = self.lines.next() else {
                self.close(None);
                return self.ready.pop_front();
            };
            let raw = raw.trim();
            if is_data(raw) {
                self.take_row(i + 1, raw);
            }
        }
    }
}

/// The column a header field names (`tenant` is another name for `id`).
fn column_named(field: &str) -> Option<&'static str> {
    let name = if field == "tenant" { "id" } else { field };
    DEFAULT_COLUMNS.iter().find(|c| **c == name).copied()
}

/// A first line is a header when it starts with `id` (or `tenant`), or
/// names two columns or more. One column name alone is data: `schema` is
/// also the default isolation, and a tenant may be named `domain`.
fn looks_like_header(fields: &[String]) -> bool {
    fields.first().and_then(|f| column_named(f)) == Some("id")
        || fields.iter().filter(|f| column_named(f).is_some()).count() >= 2
}

/// The columns a header line names, in its order: every one known, none
/// twice, and `id` (or `tenant`) among them.
fn header(fields: &[String]) -> Result<Vec<&'static str>, String> {
    let mut columns = Vec::with_capacity(fields.len());
    for field in fields {
        let Some(column) = column_named(field) else {
            return Err(format!(
                "unknown column '{field}' in the header: use {}",
                DEFAULT_COLUMNS.join(", ")
            ));
        };
        if columns.contains(&column) {
            return Err(format!("column '{column}' is named twice in the header"));
        }
        columns.push(column);
    }
    if !columns.contains(&"id") {
        return Err("the header names no 'id' column".into());
    }
    Ok(columns)
}

/// One data row as a tenant, and the domain it names (if any).
fn row(columns: &[&str], fields: Vec<String>) -> (TenantSpec, Option<String>) {
    let mut spec = TenantSpec::default();
    let mut domain = None;
    for (column, value) in columns.iter().zip(fields) {
        let value = (!value.is_empty()).then_some(value);
        match *column {
            "id" => spec.id = value.unwrap_or_default(),
            "schema" => spec.schema = value,
            "domain" => domain = value,
            "name" => spec.name = value,
            "isolation" => spec.isolation = value,
            "status" => spec.status = value,
            "pool" => spec.pool = value,
            "plan" => spec.plan = value,
            _ => spec.cluster = value,
        }
    }
    (spec, domain)
}

/// The tenant fields a repeated row sets to something else than the
/// tenant's first row (an empty field repeats the first row's).
fn conflicting_fields(first: &TenantSpec, repeated: &TenantSpec) -> Vec<&'static str> {
    [
        ("schema", &first.schema, &repeated.schema),
        ("name", &first.name, &repeated.name),
        ("isolation", &first.isolation, &repeated.isolation),
        ("status", &first.status, &repeated.status),
        ("pool", &first.pool, &repeated.pool),
        ("plan", &first.plan, &repeated.plan),
        ("cluster", &first.cluster, &repeated.cluster),
    ]
    .into_iter()
    .filter(|(_, first, repeated)| repeated.is_some() && first != repeated)
    .map(|(column, ..)| column)
    .collect()
}

/// Splits one CSV line, honouring double quotes (`""` is a quote inside).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_string()),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    fields.push(field.trim().to_string());
    Ok(fields)
}

#[cfg(test)]
mod tests;
