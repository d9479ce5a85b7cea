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

/// An import file read into tenants (or bad rows), not yet written.
pub struct ParsedImport(Vec<Parsed>);

/// Reads `text` (CSV or NDJSON); a bad header refuses it all, so callers
/// can read before they open or write anything.
pub fn read(text: &str) -> Result<ParsedImport, ImportError> {
    parse(text).map(ParsedImport)
}

impl ParsedImport {
    /// How many tenants (a row each, or a run of rows with one id) there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Imports what `read` made of a file, writing batch after batch;
/// `progress` is told how far it got after each batch (tenants done and
/// failed, out of `ParsedImport::len`).
pub async fn import(
    store: &dyn Store,
    parsed: ParsedImport,
    rules: &SpecRules,
    mut progress: impl FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        domains: Some(Vec::new()),
        ..ImportReport::default()
    };
    let total = parsed.len();
    let mut tell = |report: &ImportReport| {
        progress(Progress {
            total,
            done: report.imported + report.failed,
            failed: report.failed,
        })
    };
    let mut rows = parsed.0.into_iter();
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
        tell(&report);
        batch = next;
    }
    tell(&report);
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

/// Splits `text` into tenants with the line each starts on.
fn parse(text: &str) -> Result<Vec<Parsed>, ImportError> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if first.is_some_and(|l| l.starts_with('{')) {
        Ok(parse_ndjson(text))
    } else {
        parse_csv(text)
    }
}

fn parse_ndjson(text: &str) -> Vec<Parsed> {
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
        .collect()
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

fn parse_csv(text: &str) -> Result<Vec<Parsed>, ImportError> {
    let mut out: Vec<Parsed> = Vec::new();
    let mut columns: Vec<&'static str> = DEFAULT_COLUMNS.to_vec();
    let mut seen_row = false;
    // The entry in `out` that consecutive rows with its id add domains to.
    let mut open: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let fields = match split_csv(raw) {
            Ok(fields) => fields,
            Err(e) => {
                out.push((line, Err(e)));
                seen_row = true;
                continue;
            }
        };
        let first_row = !seen_row;
        seen_row = true;
        if first_row && looks_like_header(&fields) {
            columns = header(&fields).map_err(|message| ImportError::Header { line, message })?;
            continue;
        }
        if fields.len() > columns.len() {
            out.push((
                line,
                Err(format!(
                    "{} fields, expected at most {}",
                    fields.len(),
                    columns.len()
                )),
            ));
            continue;
        }
        let (spec, domain) = row(&columns, fields);
        match open.map(|index| &mut out[index]) {
            Some((first_line, Ok(first))) if first.id == spec.id => {
                let conflicts = conflicting_fields(first, &spec);
                if conflicts.is_empty() {
                    first.domains.extend(domain);
                } else {
                    let message = format!(
                        "line {first_line} gives tenant '{}' a different {}: a repeated row may only add a domain",
                        spec.id,
                        conflicts.join(", ")
                    );
                    out.push((line, Err(message)));
                }
            }
            _ => {
                let mut spec = spec;
                spec.domains.extend(domain);
                open = Some(out.len());
                out.push((line, Ok(spec)));
            }
        }
    }
    Ok(out)
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
