//! Host normalisation: the pure function that turns a `Host` header (or an
//! HTTP/2 `:authority`) into the key of the domain table, and the stricter check
//! the admin API applies to domains before they are stored.

use std::net::Ipv6Addr;

/// Longest DNS name, without the trailing dot.
pub const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Why a host or domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("missing Host header")]
    Missing,
    #[error("malformed host: {0}")]
    Malformed(&'static str),
}

/// A normalised host kept on the stack: no allocation per request.
#[derive(Clone)]
pub struct HostBuf {
    buf: [u8; MAX_HOST_LEN + 2],
    len: u8,
}

impl HostBuf {
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes checked by `normalize_host` are ever written.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) -> Result<(), HostError> {
        let at = self.len as usize;
        if at >= MAX_HOST_LEN {
            return Err(HostError::Malformed("longer than 253 characters"));
        }
        self.buf[at] = byte;
        self.len += 1;
        Ok(())
    }
}

impl std::fmt::Debug for HostBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalises a raw Host value: lowercase, no port, no trailing dot and, when
/// `strip_www` is set, no leading `www.`. IPv6 literals keep their brackets
/// (`[::1]:8080` → `[::1]`).
pub fn normalize_host(raw: &[u8], strip_www: bool) -> Result<HostBuf, HostError> {
    let mut out = HostBuf {
        buf: [0; MAX_HOST_LEN + 2],
        len: 0,
    };
    if raw.is_empty() {
        return Err(HostError::Malformed("empty host"));
    }
    if raw[0] == b'[' {
        return normalize_ipv6(raw, out);
    }
    let name = match raw.iter().rposition(|&b| b == b':') {
        Some(colon) => {
            check_port(&raw[colon + 1..])?;
            &raw[..colon]
        }
        None => raw,
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    // `WWW.` counts too: the prefix is checked before the name is lowercased.
    // `www.com` is a name of its own, not `com`.
    let has_www =
        name.len() > 4 && name[..4].eq_ignore_ascii_case(b"www.") && name[4..].contains(&b'.');
    let name = if strip_www && has_www {
        &name[4..]
    } else {
        name
    };
    if name.is_empty() {
        return Err(HostError::Malformed("empty host"));
    }
    let mut label_len = 0usize;
    for &b in name {
        let lower = b.to_ascii_lowercase();
        match lower {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => label_len += 1,
            b'.' if label_len > 0 => label_len = 0,
            b'.' => return Err(HostError::Malformed("empty label")),
            _ => return Err(HostError::Malformed("invalid character")),
        }
        if label_len > MAX_LABEL_LEN {
            return Err(HostError::Malformed("label longer than 63 characters"));
        }
        out.push(lower)?;
    }
    if label_len == 0 {
        return Err(HostError::Malformed("empty label"));
    }
    Ok(out)
}

fn normalize_ipv6(raw: &[u8], mut out: HostBuf) -> Result<HostBuf, HostError> {
    let close = raw
        .iter()
        .position(|&b| b == b']')
        .ok_or(HostError::Malformed("unclosed IPv6 literal"))?;
    let inner = &raw[1..close];
    let parsed = std::str::from_utf8(inner)
        .ok()
        .and_then(|s| s.parse::<Ipv6Addr>().ok());
    if parsed.is_none() {
        return Err(HostError::Malformed("invalid IPv6 literal"));
    }
    match &raw[close + 1..] {
        [] => {}
        [b':', port @ ..] => check_port(port)?,
        _ => return Err(HostError::Malformed("junk after IPv6 literal")),
    }
    out.push(b'[')?;
    for &b in inner {
        out.push(b.to_ascii_lowercase())?;
    }
    out.push(b']')?;
    Ok(out)
}

/// RFC 9110 allows an empty port after the colon.
fn check_port(port: &[u8]) -> Result<(), HostError> {
    if port.len() <= 5 && port.iter().all(u8::is_ascii_digit) {
        let value = port.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        if value <= 65535 {
            return Ok(());
        }
    }
    Err(HostError::Malformed("invalid port"))
}

/// The wildcard entry that would cover `host` (`a.example.com` → `*.example.com`).
pub fn wildcard_parent(host: &str) -> Option<String> {
    let dot = host.find('.')?;
    let parent = &host[dot + 1..];
    parent.contains('.').then(|| format!("*.{parent}"))
}

/// Whether `host` is exactly one label below the wildcard domain `*.parent`.
pub fn wildcard_covers(wildcard: &str, host: &str) -> bool {
    match (wildcard.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && rest == parent,
        _ => false,
    }
}

/// Validates and normalises a domain for the domain table: letters, digits and
/// hyphens in labels, an optional leading `*.`, no port. Applies the same `www.`
/// rule as the data path so a stored domain is always reachable.
pub fn normalize_domain(domain: &str, strip_www: bool) -> Result<String, HostError> {
    let (wildcard, name) = match domain.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, domain),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST_LEN - 2 * usize::from(wildcard) {
        return Err(HostError::Malformed("a domain needs 1-253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(HostError::Malformed("each label needs 1-63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(HostError::Malformed(
                "labels may hold only letters, digits and '-'",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostError::Malformed(
                "a label may not start or end with '-'",
            ));
        }
    }
    if wildcard && !name.contains('.') {
        return Err(HostError::Malformed(
            "a wildcard needs at least two labels after '*.'",
        ));
    }
    let mut name = name.to_ascii_lowercase();
    // As the data path does: only a `www.` with two labels or more after it.
    if strip_www && !wildcard && name.starts_with("www.") && name[4..].contains('.') {
        name.drain(..4);
    }
    Ok(if wildcard { format!("*.{name}") } else { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, HostError> {
        normalize_host(raw.as_bytes(), true).map(|h| h.as_str().to_owned())
    }

    #[test]
    fn case_port_trailing_dot_and_www_are_normalised() {
        assert_eq!(norm("Acme.Example.COM").unwrap(), "acme.example.com");
        assert_eq!(norm("acme.example.com:8080").unwrap(), "acme.example.com");
        assert_eq!(norm("acme.example.com.").unwrap(), "acme.example.com");
        assert_eq!(norm("acme.example.com.:443").unwrap(), "acme.example.com");
        assert_eq!(norm("WWW.acme.com").unwrap(), "acme.com");
        assert_eq!(norm("www.").unwrap(), "www");
        assert_eq!(
            norm("WWW.com").unwrap(),
            "www.com",
            "one label after www. is kept"
        );
        assert_eq!(norm("acme.com:").unwrap(), "acme.com");
        let kept = normalize_host(b"www.acme.com", false).unwrap();
        assert_eq!(kept.as_str(), "www.acme.com");
    }

    #[test]
    fn ipv6_literals_keep_brackets_and_drop_the_port() {
        assert_eq!(norm("[::1]:8080").unwrap(), "[::1]");
        assert_eq!(norm("[FE80::1]").unwrap(), "[fe80::1]");
        assert!(norm("[::1").is_err());
        assert!(norm("[zz::1]").is_err());
        assert!(norm("[::1]x").is_err());
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for bad in [
            "",
            ":80",
            "a..b",
            ".a",
            "a b",
            "a/b",
            "host:99999",
            "host:8o",
            "a:b:c",
            "é.com",
        ] {
            assert!(norm(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(norm(&"a".repeat(64)).is_err());
        let long = ["abcdefghi"; 26].join(".");
        assert!(long.len() > MAX_HOST_LEN);
        assert!(norm(&long).is_err());
    }

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert_eq!(
            wildcard_parent("a.example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(wildcard_parent("example.com"), None);
        assert!(wildcard_covers("*.example.com", "a.example.com"));
        assert!(!wildcard_covers("*.example.com", "a.b.example.com"));
        assert!(!wildcard_covers("*.example.com", "example.com"));
    }

    #[test]
    fn domains_are_validated_for_the_table() {
        assert_eq!(
            normalize_domain("Shop.Example.com.", true).unwrap(),
            "shop.example.com"
        );
        assert_eq!(
            normalize_domain("*.Example.com", true).unwrap(),
            "*.example.com"
        );
        assert_eq!(normalize_domain("www.acme.com", true).unwrap(), "acme.com");
        assert_eq!(normalize_domain("www.com", true).unwrap(), "www.com");
        assert_eq!(normalize_domain("localhost", true).unwrap(), "localhost");
        for bad in [
            "", "*.com", "a_b.com", "-a.com", "a-.com", "a..com", "a.com:80", "*", "a.*.com",
        ] {
            assert!(
                normalize_domain(bad, true).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
