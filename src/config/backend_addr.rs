//! A backend's address as config names it: parsed once when config is
//! checked, so a bad URL is refused with its key before anything starts.

use http::uri::{Authority, Scheme};

/// A backend's base address (`http://host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendAddr {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl BackendAddr {
    /// Accepts `http://host:port` (a trailing `/` is fine; paths are not).
    pub fn parse(url: &str) -> Result<BackendAddr, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "'{url}': scheme {other} is not supported, use http://"
                ))
            }
            None => return Err(format!("'{url}' needs a scheme, e.g. http://{url}")),
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("'{url}' has no host"))?;
        if authority.port_u16().is_none() {
            return Err(format!("'{url}' needs an explicit port"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!("'{url}': backend URLs take no path or query"));
        }
        Ok(BackendAddr {
            scheme: Scheme::HTTP,
            authority,
        })
    }
}

impl std::fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
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
    }
}
