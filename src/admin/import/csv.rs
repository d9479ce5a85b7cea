//! The CSV form of an import: the header (which columns, in which order,
//! `column:NAME` for a further column of a django-tenants tenant table),
//! rows split honouring quotes, and consecutive rows of one tenant merged.
//!
//! A first line that starts with `id` or names two columns or more is a
//! header; an unknown or repeated column refuses the whole import. Rows
//! with the same id on consecutive lines add domains to one tenant; one
//! whose other fields (its `column:` values included) differ from the first
//! row's is a bad row. An empty field sets nothing.

use std::collections::VecDeque;

use super::{is_data, ImportError, Parsed};
use crate::tenant::spec::TenantSpec;

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

/// How a header names a further column of the tenant table.
const EXTRA_PREFIX: &str = "column:";

/// A column of the file: one of the tenant's own fields, or a further
/// column of a django-tenants tenant table (`column:NAME` in the header),
/// whose value goes into the spec's `columns` as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Field(&'static str),
    Extra(String),
}

/// CSV rows as tenants: consecutive rows with one id are one tenant,
/// given once its last row is read.
pub(super) struct CsvRows<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    columns: Vec<Column>,
    /// The tenant whose rows are being read, with the line it starts on.
    open: Option<(usize, TenantSpec)>,
    /// Bad rows read while a tenant is open: given after it, in line order.
    after_open: Vec<Parsed>,
    /// What is ready to be given, in order.
    ready: VecDeque<Parsed>,
}

impl<'a> CsvRows<'a> {
    /// Reads the header, if the first data line is one (a bad header
    /// refuses the import).
    pub(super) fn new(text: &'a str) -> Result<Self, ImportError> {
        let mut lines = text.lines().enumerate();
        let mut columns: Vec<Column> = DEFAULT_COLUMNS.map(Column::Field).to_vec();
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
/// names two columns or more (`column:NAME` counts). One column name alone
/// is data: `schema` is also the default isolation, and a tenant may be
/// named `domain`.
fn looks_like_header(fields: &[String]) -> bool {
    let names_a_column = |f: &String| column_named(f).is_some() || f.starts_with(EXTRA_PREFIX);
    fields.first().and_then(|f| column_named(f)) == Some("id")
        || fields.iter().filter(|f| names_a_column(f)).count() >= 2
}

/// The columns a header line names, in its order: every one known (or a
/// `column:NAME`), none twice, and `id` (or `tenant`) among them.
fn header(fields: &[String]) -> Result<Vec<Column>, String> {
    let mut columns = Vec::with_capacity(fields.len());
    for field in fields {
        let column = match (column_named(field), field.strip_prefix(EXTRA_PREFIX)) {
            (Some(column), _) => Column::Field(column),
            (None, Some(name)) if !name.trim().is_empty() => Column::Extra(name.trim().to_owned()),
            (None, Some(_)) => {
                return Err(format!(
                    "'{field}' names no column: write {EXTRA_PREFIX}NAME"
                ))
            }
            (None, None) => {
                return Err(format!(
                    "unknown column '{field}' in the header: use {}, or {EXTRA_PREFIX}NAME for a column of a django-tenants tenant table",
                    DEFAULT_COLUMNS.join(", ")
                ))
            }
        };
        if columns.contains(&column) {
            let name = match &column {
                Column::Field(name) => name.to_string(),
                Column::Extra(name) => format!("{EXTRA_PREFIX}{name}"),
            };
            return Err(format!("column '{name}' is named twice in the header"));
        }
        columns.push(column);
    }
    if !columns.contains(&Column::Field("id")) {
        return Err("the header names no 'id' column".into());
    }
    Ok(columns)
}

/// One data row as a tenant, and the domain it names (if any). A
/// `column:NAME` value is a JSON string, as `tenants create --column`
/// gives it: the PostgreSQL store casts it to the column's type
/// (`true`, `2027-12-31`, `7`).
fn row(columns: &[Column], fields: Vec<String>) -> (TenantSpec, Option<String>) {
    let mut spec = TenantSpec::default();
    let mut domain = None;
    for (column, value) in columns.iter().zip(fields) {
        let value = (!value.is_empty()).then_some(value);
        let name = match column {
            Column::Field(name) => *name,
            Column::Extra(name) => {
                if let Some(value) = value {
                    spec.columns
                        .insert(name.clone(), serde_json::Value::String(value));
                }
                continue;
            }
        };
        match name {
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

/// The tenant fields (and `column:` values) a repeated row sets to
/// something else than the tenant's first row (an empty field repeats the
/// first row's).
fn conflicting_fields(first: &TenantSpec, repeated: &TenantSpec) -> Vec<String> {
    let fields = [
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
    .map(|(column, ..)| column.to_owned());
    let columns = repeated
        .columns
        .iter()
        .filter(|(name, value)| first.columns.get(*name) != Some(value))
        .map(|(name, _)| format!("{EXTRA_PREFIX}{name}"));
    fields.chain(columns).collect()
}

/// Splits one CSV line, honouring double quotes (`""` is a quote inside).
pub(super) fn split_csv(line: &str) -> Result<Vec<String>, String> {
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
