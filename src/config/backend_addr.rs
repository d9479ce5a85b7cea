//! A backend's address as config names it: parsed once when config is
//! checked, so a bad URL is refused with its key before anything starts.
//! Three forms: `unix:/path` (HTTP over a Unix socket), `http://host:port`
//! and `https://host:port`, whose host is an IP literal or a DNS name (then
//! re-resolved while the gateway runs).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// A backend's base address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendAddr {
    /// `unix:/run/app.sock`: plain HTTP over a Unix stream socket.
    Unix(PathBuf),
    /// `http://host:port` or (`tls`) `https://host:port`.
    Net { tls: bool, host: NetHost, port: u16 },
}

/// The host of an `http(s)://` backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetHost {
    Ip(IpAddr),
    /// A DNS name (lowercase, without a trailing dot), resolved on an interval.
    Name(String),
}

impl BackendAddr {
    /// Accepts `unix:/abs/path`, `http://host:port` and `https://host:port`
    /// (a trailing `/` is fine; paths are not).
    pub fn parse(url: &str) -> Result<BackendAddr, String> {
        if let Some(path) = url.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(format!(
                    "'{url}': a Unix socket path must be absolute, e.g. unix:/run/app.sock"
                ));
            }
            return Ok(BackendAddr::Unix(path));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(format!(
                    "'{url}': scheme {other} is not supported, use http://, https:// or unix:"
                ))
            }
            None => return Err(format!("'{url}' needs a scheme, e.g. http://{url}")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("'{url}' has no host"))?;
        let port = authority
            .port_u16()
            .ok_or_else(|| format!("'{url}' needs an explicit port"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!("'{url}': backend URLs take no path or query"));
        }
        if authority.as_str().contains('@') {
            return Err(format!("'{url}': backend URLs take no user name"));
        }
        let host = authority.host();
        let host = match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => NetHost::Ip(ip),
            Err(_) => {
                let name = host.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() || rustls_pki_types::DnsName::try_from(name.as_str()).is_err() {
                    return Err(format!("'{url}': '{host}' is not a valid host name"));
                }
                NetHost::Name(name)
            }
        };
        Ok(BackendAddr::Net { tls, host, port })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, BackendAddr::Net { tls: true, .. })
    }

    /// The DNS name to resolve, for a backend named by one.
    pub fn dns_name(&self) -> Option<&str> {
        match self {
            BackendAddr::Net {
                host: NetHost::Name(name),
                ..
            } => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for NetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            NetHost::Ip(ip) => write!(f, "{ip}"),
            NetHost::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            BackendAddr::Net { tls, host, port } => {
                let scheme = if *tls { "https" } else { "http" };
                write!(f, "{scheme}://{host}:{port}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls_are_checked() {
        assert!(BackendAddr::parse("http://127.0.0.1:8000").is_ok());
        assert!(BackendAddr::parse("http://app:8000/").is_ok());
        assert!(BackendAddr::parse("127.0.0.1:8000")
            .unwrap_err()
            .contains("scheme"));
        assert!(BackendAddr::parse("http://app")
            .unwrap_err()
            .contains("port"));
        assert!(BackendAddr::parse("http://app:80/x")
            .unwrap_err()
            .contains("path"));
        assert!(BackendAddr::parse("ftp://app:21")
            .unwrap_err()
            .contains("not supported"));
        assert!(BackendAddr::parse("unix:run/app.sock")
            .unwrap_err()
            .contains("absolute"));
        assert!(BackendAddr::parse("http://a_b!:80")
            .unwrap_err()
            .contains("host name"));
    }

    #[test]
    fn the_three_forms_parse_and_print_back() {
        for (url, dns) in [
            ("unix:/run/app.sock", None),
            ("http://10.0.0.5:8000", None),
            ("https://[::1]:8443", None),
            ("https://api.internal:8443", Some("api.internal")),
        ] {
            let addr = BackendAddr::parse(url).unwrap();
            assert_eq!(addr.to_string(), url);
            assert_eq!(addr.dns_name(), dns);
        }
        assert_eq!(
            BackendAddr::parse("unix:/run/app.sock").unwrap(),
            BackendAddr::Unix("/run/app.sock".into())
        );
        assert!(BackendAddr::parse("https://App.Internal.:8443")
            .unwrap()
            .is_tls());
        assert_eq!(
            BackendAddr::parse("http://App.Internal.:80")
                .unwrap()
                .dns_name(),
            Some("app.internal")
        );
    }
}
