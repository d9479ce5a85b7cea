//! The default-content template: SQL statements with `{tenant_id}`,
//! `{tenant_name}` and `{schema}` placeholders. Values are never pasted into
//! the SQL: `{tenant_id}` and `{tenant_name}` become bound parameters (also
//! inside a string literal, which is split around them: `'Welcome to
//! {tenant_name}'` runs as `'Welcome to ' || $1::text || ''`), and `{schema}`
//! becomes a quoted identifier (or a bound value inside a literal).

use crate::store::postgres::quote_ident;

/// A value bound for a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    TenantId,
    TenantName,
    Schema,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// The schema as a quoted identifier.
    SchemaIdent,
    Param(Value),
}

/// One statement of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pieces: Vec<Piece>,
}

/// The values of one tenant.
pub struct Values<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    pub schema: &'a str,
}

impl Values<'_> {
    fn get(&self, v: Value) -> &str {
        match v {
            Value::TenantId => self.tenant_id,
            Value::TenantName => self.tenant_name,
            Value::Schema => self.schema,
        }
    }
}

impl Statement {
    /// The SQL with `$n::text` parameters, and the values to bind in order.
    pub fn render<'a>(&self, values: &'a Values<'_>) -> (String, Vec<&'a str>) {
        let mut sql = String::new();
        let mut order: Vec<Value> = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => sql.push_str(text),
                Piece::SchemaIdent => sql.push_str(&quote_ident(values.schema)),
                Piece::Param(v) => {
                    let n = match order.iter().position(|o| o == v) {
                        Some(i) => i + 1,
                        None => {
                            order.push(*v);
                            order.len()
                        }
                    };
                    sql.push_str(&format!("${n}::text"));
                }
            }
        }
        (sql, order.into_iter().map(|v| values.get(v)).collect())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Literal,
    Quoted,
    LineComment,
    BlockComment,
}

/// Splits a template into statements at top-level `;`, keeping quotes,
/// comments and dollar-quoted bodies intact.
pub fn parse(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut buf = String::new();
    let mut has_code = false;
    let mut state = State::Code;
    let mut dollar_tag: Option<String> = None;
    let mut i = 0;
    let bytes = text.as_bytes();
    let flush = |buf: &mut String, pieces: &mut Vec<Piece>| {
        if !buf.is_empty() {
            pieces.push(Piece::Text(std::mem::take(buf)));
        }
    };
    while i < text.len() {
        let rest = &text[i..];
        if let Some(tag) = &dollar_tag {
            if rest.starts_with(tag.as_str()) {
                buf.push_str(tag);
                i += tag.len();
                dollar_tag = None;
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                buf.push(c);
                i += c.len_utf8();
            }
            continue;
        }
        if matches!(state, State::Code | State::Literal) {
            let placeholder = [
                ("{tenant_id}", Value::TenantId),
                ("{tenant_name}", Value::TenantName),
                ("{schema}", Value::Schema),
            ]
            .into_iter()
            .find(|(p, _)| rest.starts_with(p));
            if let Some((p, value)) = placeholder {
                has_code = true;
                if state == State::Literal {
                    buf.push_str("' || ");
                    flush(&mut buf, &mut pieces);
                    pieces.push(Piece::Param(value));
                    buf.push_str(" || '");
                } else {
                    flush(&mut buf, &mut pieces);
                    pieces.push(match value {
                        Value::Schema => Piece::SchemaIdent,
                        other => Piece::Param(other),
                    });
                }
                i += p.len();
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match c {
                ';' => {
                    flush(&mut buf, &mut pieces);
                    if has_code {
                        out.push(Statement {
                            pieces: std::mem::take(&mut pieces),
                        });
                    }
                    pieces.clear();
                    has_code = false;
                    i += 1;
                    continue;
                }
                '\'' => state = State::Literal,
                '"' => state = State::Quoted,
                '-' if next == Some(b'-') => state = State::LineComment,
                '/' if next == Some(b'*') => state = State::BlockComment,
                '$' => {
                    if let Some(end) = rest[1..].find('$') {
                        let tag = &rest[..end + 2];
                        if tag[1..tag.len() - 1]
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_')
                        {
                            has_code = true;
                            buf.push_str(tag);
                            i += tag.len();
                            dollar_tag = Some(tag.to_owned());
                            continue;
                        }
                    }
                }
                _ => {}
            },
            State::Literal if c == '\'' => state = State::Code,
            State::Quoted if c == '"' => state = State::Code,
            State::LineComment if c == '\n' => state = State::Code,
            State::BlockComment if c == '*' && next == Some(b'/') => {
                buf.push_str("*/");
                i += 2;
                state = State::Code;
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() && !matches!(state, State::LineComment | State::BlockComment) {
            has_code = true;
        }
        buf.push(c);
        i += c.len_utf8();
    }
    flush(&mut buf, &mut pieces);
    if has_code {
        out.push(Statement { pieces });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Values<'static> = Values {
        tenant_id: "acme",
        tenant_name: "Acme'; DROP TABLE x; --",
        schema: "acme",
    };

    #[test]
    fn placeholders_become_parameters_and_identifiers() {
        let stmts = parse(
            "-- pages\nINSERT INTO {schema}.pages (title, owner) VALUES ('Welcome to {tenant_name}!', {tenant_id});\n\n",
        );
        assert_eq!(stmts.len(), 1);
        let (sql, params) = stmts[0].render(&VALUES);
        assert!(sql.contains("INSERT INTO \"acme\".pages"), "{sql}");
        assert!(
            sql.contains("('Welcome to ' || $1::text || '!', $2::text)"),
            "{sql}"
        );
        assert_eq!(params, ["Acme'; DROP TABLE x; --", "acme"]);
    }

    #[test]
    fn semicolons_in_quotes_comments_and_dollar_bodies_do_not_split() {
        let stmts = parse(
            "SELECT 'a;b'; /* c; d */ SELECT \"x;y\" FROM t; \
             DO $body$ BEGIN PERFORM 1; END $body$; -- end; \n",
        );
        assert_eq!(stmts.len(), 3);
        let (sql, params) = stmts[2].render(&VALUES);
        assert!(sql.contains("PERFORM 1; END $body$"), "{sql}");
        assert!(params.is_empty());
    }

    #[test]
    fn schema_inside_a_literal_is_a_bound_value() {
        let (sql, params) = parse("SELECT '{schema}'")[0].render(&VALUES);
        assert_eq!(sql, "SELECT '' || $1::text || ''");
        assert_eq!(params, ["acme"]);
    }
}
