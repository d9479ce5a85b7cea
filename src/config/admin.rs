//! The admin listener's settings: its address, its token, and which `Host`s
//! and `Origin`s it answers. The last two are the defence against DNS
//! rebinding and cross-site requests from a browser on the operator's machine.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token; falls back to `TENANT_GATEWAY_ADMIN_TOKEN`.
    pub token: Option<String>,
    /// `Host` values answered besides loopback names and the listener's own
    /// address: `name` (any port) or `name:port`.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose browser requests are served.
    pub allowed_origins: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Splits a `Host` value into its host (brackets kept off an IPv6 literal)
/// and its port; `None` when it is not `host`, `host:port` or `[v6]:port`.
pub fn split_host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    (valid_name || host.parse::<IpAddr>().is_ok()).then_some((host, port))
}

/// Every problem of the `admin` section, with its key.
pub(super) fn problems(admin: &AdminConfig, out: &mut Vec<ConfigError>) {
    for (i, host) in admin.allowed_hosts.iter().enumerate() {
        if split_host_port(host).is_none() {
            out.push(ConfigError::new(
                format!("admin.allowed_hosts[{i}]"),
                format!("'{host}' is not a host name or address with an optional :port (no scheme, path or wildcard)"),
            ));
        }
    }
    for (i, origin) in admin.allowed_origins.iter().enumerate() {
        if let Err(reason) = check_origin(origin) {
            out.push(ConfigError::new(
                format!("admin.allowed_origins[{i}]"),
                format!("'{origin}' {reason}"),
            ));
        }
    }
}

/// An origin as browsers send it: `http://` or `https://`, a host, an
/// optional port, nothing after.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or("is not an origin: it must start with http:// or https:// (\"*\" and \"null\" are not allowed)")?;
    if authority.contains('/') {
        return Err("is not an origin: it has a path (an origin is scheme://host[:port], with no trailing slash)");
    }
    split_host_port(authority)
        .map(|_| ())
        .ok_or("is not an origin: its host or port is not valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_split_into_host_and_port() {
        assert_eq!(split_host_port("localhost"), Some(("localhost", None)));
        assert_eq!(
            split_host_port("127.0.0.1:9090"),
            Some(("127.0.0.1", Some(9090)))
        );
        assert_eq!(split_host_port("[::1]:9090"), Some(("::1", Some(9090))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        for bad in [
            "",
            ":9090",
            "a b",
            "host:",
            "host:99999",
            "[::1",
            "[nope]:1",
            "h/p",
            "*",
        ] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(check_origin("https://console.example.com").is_ok());
        assert!(check_origin("http://10.0.0.5:9090").is_ok());
        for bad in [
            "*",
            "null",
            "console.example.com",
            "https://x.example/",
            "ftp://x",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
