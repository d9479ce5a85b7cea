//! Sign-up ids: a tenant id (which is also its schema name) derived from a
//! username or an email by the seed's rule, with `_2`, `_3`, … appended
//! while the id is taken. Pure functions; the admin API does the trying.

use super::derive_schema;

/// Longest id derived from a hint, before any `_N` suffix.
pub const MAX_HINT_CHARS: usize = 60;

/// Longest id or schema name with its suffix (PostgreSQL's identifier limit).
const MAX_ID_CHARS: usize = 63;

/// The id for `hint`: lowercase; every character outside `[a-z0-9_]`
/// becomes `_`; `tenant_` before a leading digit (and `tenant` before a
/// leading `_`, since an id starts with a letter or digit); at most
/// [`MAX_HINT_CHARS`] characters. `None` for a blank hint.
/// `john.doe@email.com` → `john_doe_email_com`.
pub fn id_from_hint(hint: &str) -> Option<String> {
    let hint = hint.trim();
    if hint.is_empty() {
        return None;
    }
    let mut id = derive_schema(hint);
    if id.starts_with('_') {
        id.insert_str(0, "tenant");
    }
    // Only ASCII is left, so bytes are characters.
    id.truncate(MAX_HINT_CHARS);
    Some(id)
}

/// The `n`th id to try for `base` (1: `base` itself, then `base_2`, …),
/// shortened so that it stays a valid schema name.
pub fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("_{n}");
    let keep = base.len().min(MAX_ID_CHARS - suffix.len());
    format!("{}{suffix}", &base[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{validate_schema, validate_tenant_id};

    #[test]
    fn hints_become_ids_by_the_seed_rule() {
        assert_eq!(
            id_from_hint("john.doe@email.com").as_deref(),
            Some("john_doe_email_com")
        );
        assert_eq!(id_from_hint("JaneDoe").as_deref(), Some("janedoe"));
        assert_eq!(id_from_hint("42shop").as_deref(), Some("tenant_42shop"));
        assert_eq!(id_from_hint("Zoë-K").as_deref(), Some("zo__k"));
        assert_eq!(id_from_hint(".hidden").as_deref(), Some("tenant_hidden"));
        assert_eq!(id_from_hint("   "), None);
        let long = id_from_hint(&"a".repeat(100)).unwrap();
        assert_eq!(long.len(), MAX_HINT_CHARS);
    }

    #[test]
    fn collisions_get_a_numbered_suffix_within_the_name_limit() {
        assert_eq!(candidate("john_doe_email_com", 1), "john_doe_email_com");
        assert_eq!(candidate("john_doe_email_com", 2), "john_doe_email_com_2");
        assert_eq!(candidate("john_doe_email_com", 3), "john_doe_email_com_3");
        let base = "a".repeat(MAX_HINT_CHARS);
        for n in [2, 10, 100, 1000] {
            let id = candidate(&base, n);
            assert!(id.ends_with(&format!("_{n}")), "{id}");
            assert!(validate_tenant_id(&id).is_ok(), "{id}");
            assert!(validate_schema(&id, &id).is_ok(), "{id}");
        }
    }

    #[test]
    fn every_derived_id_is_a_valid_id_and_schema() {
        for hint in [
            "john.doe@email.com",
            "42",
            "_",
            "@@@",
            "Ünïcode ünïcode",
            "a-b",
        ] {
            let id = id_from_hint(hint).unwrap();
            assert!(validate_tenant_id(&id).is_ok(), "{hint} → {id}");
            assert!(validate_schema(&id, &id).is_ok(), "{hint} → {id}");
        }
    }
}
