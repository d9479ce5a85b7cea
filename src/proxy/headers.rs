//! Prepare-upstream-request phase, as pure functions over a `HeaderMap`:
//! drop hop-by-hop headers, strip every client copy of the tenant headers,
//! inject ours, and set the `X-Forwarded-*` and request-id headers.

use http::header::{HeaderName, HeaderValue, CONNECTION, FORWARDED, HOST, UPGRADE};
use http::HeaderMap;

use super::signing::Signer;
use crate::config::reserved_headers::{
    HOP_BY_HOP, REQUEST_FRAMING, TENANT_PREFIX, X_FORWARDED_FOR, X_FORWARDED_HOST,
    X_FORWARDED_PROTO, X_REAL_IP,
};
use crate::config::HeaderNamesConfig;
use crate::routing::RoutedTenant;

/// The injected header names, built once from config.
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub tenant_id: HeaderName,
    pub schema: HeaderName,
    pub database: HeaderName,
    pub cache_prefix: HeaderName,
    pub cluster: HeaderName,
    pub request_id: HeaderName,
    pub signature: HeaderName,
}

impl HeaderNames {
    /// Names were checked by config validation; an invalid one falls back to the default.
    pub fn from_config(config: &HeaderNamesConfig) -> HeaderNames {
        let defaults = HeaderNamesConfig::default();
        let name = |v: &str, d: &str| {
            HeaderName::from_bytes(v.as_bytes()).unwrap_or_else(|_| {
                HeaderName::from_bytes(d.as_bytes()).expect("default header name")
            })
        };
        HeaderNames {
            tenant_id: name(&config.tenant_id, &defaults.tenant_id),
            schema: name(&config.schema, &defaults.schema),
            database: name(&config.database, &defaults.database),
            cache_prefix: name(&config.cache_prefix, &defaults.cache_prefix),
            cluster: name(&config.cluster, &defaults.cluster),
            request_id: name(&config.request_id, &defaults.request_id),
            signature: name(&config.signature, &defaults.signature),
        }
    }

    /// [`Self::is_tenant_header`] for a name as it came on the wire (any case).
    pub fn is_tenant_name(&self, name: &[u8]) -> bool {
        (name.len() >= TENANT_PREFIX.len()
            && name[..TENANT_PREFIX.len()].eq_ignore_ascii_case(TENANT_PREFIX))
            || [
                &self.tenant_id,
                &self.schema,
                &self.database,
                &self.cache_prefix,
                &self.cluster,
                &self.signature,
            ]
            .iter()
            .any(|n| n.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    fn is_tenant_header(&self, name: &HeaderName) -> bool {
        let bytes = name.as_str().as_bytes();
        bytes.starts_with(TENANT_PREFIX)
            || *name == self.tenant_id
            || *name == self.schema
            || *name == self.database
            || *name == self.cache_prefix
            || *name == self.cluster
            || *name == self.signature
    }
}

/// Removes hop-by-hop headers, including those named in `Connection`, but
/// never `Host` or `Content-Length`: a client listing them there would
/// otherwise change which site the backend serves or how it frames the body.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Collecting only when `Connection` lists extra names keeps the common case allocation-free.
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| {
            !matches!(name.as_str(), "close" | "keep-alive") && !REQUEST_FRAMING.contains(&name)
        })
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol of an HTTP/1.1 upgrade request (`Connection: upgrade` plus
/// `Upgrade: websocket`), read before hop-by-hop headers are dropped.
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants_upgrade = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    wants_upgrade
        .then(|| headers.get(UPGRADE).cloned())
        .flatten()
}

/// Puts back the two hop-by-hop headers an upgrade needs on the next hop.
pub fn keep_upgrade(headers: &mut HeaderMap, protocol: &HeaderValue) {
    headers.insert(UPGRADE, protocol.clone());
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Removes every client-supplied tenant header: the configured names and any
/// `X-Tenant-*`. This is the boundary the app trusts.
pub fn strip_tenant_headers(headers: &mut HeaderMap, names: &HeaderNames) {
    while let Some(name) = headers.keys().find(|n| names.is_tenant_header(n)).cloned() {
        headers.remove(name);
    }
}

/// Adds the headers that tell the app which tenant this request is for.
pub fn inject_tenant(headers: &mut HeaderMap, names: &HeaderNames, tenant: &RoutedTenant) {
    headers.insert(names.tenant_id.clone(), tenant.id_value.clone());
    if let Some(schema) = &tenant.schema_value {
        headers.insert(names.schema.clone(), schema.clone());
    }
    if let Some(database) = &tenant.database_value {
        headers.insert(names.database.clone(), database.clone());
    }
    if let Some(cluster) = &tenant.cluster_value {
        headers.insert(names.cluster.clone(), cluster.clone());
    }
    if let Some(prefix) = &tenant.cache_prefix_value {
        headers.insert(names.cache_prefix.clone(), prefix.clone());
    }
}

/// Adds `X-Tenant-Signature` over the injected tenant id and schema and the
/// request's id (see `proxy::signing` for the format).
pub fn sign_tenant(
    headers: &mut HeaderMap,
    names: &HeaderNames,
    signer: &Signer,
    tenant: &RoutedTenant,
    request_id: &HeaderValue,
) {
    let schema = tenant
        .schema_value
        .as_ref()
        .map_or(&b""[..], |v| v.as_bytes());
    let signature = signer.sign_now(tenant.id_value.as_bytes(), schema, request_id.as_bytes());
    headers.insert(names.signature.clone(), signature);
}

/// The peer as it is written in the `X-Forwarded-*`, `X-Real-IP` and
/// `Forwarded` headers, computed once per connection.
#[derive(Debug, Clone)]
pub struct PeerValues {
    /// The peer's IP address (`X-Forwarded-For`, `X-Real-IP`).
    pub ip: HeaderValue,
    /// The peer's RFC 7239 element: `for=192.0.2.1;proto=http`, an IPv6
    /// address quoted and bracketed (`for="[2001:db8::1]";proto=https`).
    pub forwarded: HeaderValue,
    pub proto: &'static str,
}

impl PeerValues {
    pub fn new(ip: std::net::IpAddr, proto: &'static str) -> PeerValues {
        let element = match ip {
            std::net::IpAddr::V4(v4) => format!("for={v4};proto={proto}"),
            std::net::IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto={proto}"),
        };
        PeerValues {
            ip: HeaderValue::from_str(&ip.to_string()).expect("an IP address is a header value"),
            forwarded: HeaderValue::from_str(&element).expect("an element is a header value"),
            proto,
        }
    }
}

/// `prior` lines joined by `, ` with `last` at the end (one line for a chain).
fn chain<'a>(prior: impl Iterator<Item = &'a HeaderValue>, last: &HeaderValue) -> HeaderValue {
    let mut prior = prior.peekable();
    if prior.peek().is_none() {
        return last.clone();
    }
    let mut joined = Vec::with_capacity(64);
    for hop in prior {
        joined.extend_from_slice(hop.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(last.as_bytes());
    HeaderValue::from_bytes(&joined).unwrap_or_else(|_| last.clone())
}

/// Sets `X-Forwarded-For` and `Forwarded` (appending the peer to the chain a
/// client sent: every line of it, not just the first), `X-Real-IP` (the peer,
/// whatever the client said), `X-Forwarded-Proto` and `X-Forwarded-Host`
/// (the Host the client sent).
pub fn set_forwarded(headers: &mut HeaderMap, peer: &PeerValues, host: Option<&HeaderValue>) {
    let for_chain = chain(headers.get_all(&X_FORWARDED_FOR).iter(), &peer.ip);
    headers.insert(X_FORWARDED_FOR.clone(), for_chain);
    let elements = chain(headers.get_all(FORWARDED).iter(), &peer.forwarded);
    headers.insert(FORWARDED, elements);
    headers.insert(X_REAL_IP.clone(), peer.ip.clone());
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(peer.proto),
    );
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

/// Keeps a valid incoming request id (1-128 of `[A-Za-z0-9._-]`), else makes one.
pub fn ensure_request_id(headers: &mut HeaderMap, names: &HeaderNames) -> HeaderValue {
    if let Some(id) = headers
        .get(&names.request_id)
        .filter(|v| is_valid_request_id(v.as_bytes()))
    {
        return id.clone();
    }
    let id = new_request_id();
    headers.insert(names.request_id.clone(), id.clone());
    id
}

pub fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// 128 random bits as 32 hex digits.
pub fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    // Two hex digits per byte, most significant first.
    for (pair, byte) in buf
        .chunks_exact_mut(2)
        .zip(fastrand::u128(..).to_be_bytes())
    {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    HeaderValue::from_bytes(&buf).expect("hex is a valid header value")
}

/// Restores `Host` for requests that carried only an HTTP/2 `:authority`.
pub fn ensure_host(headers: &mut HeaderMap, authority: Option<&http::uri::Authority>) {
    if !headers.contains_key(HOST) {
        if let Some(value) = authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            headers.insert(HOST, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{Isolation, Tenant};
    use http::header::TRANSFER_ENCODING;

    fn names() -> HeaderNames {
        HeaderNames::from_config(&HeaderNamesConfig::default())
    }

    fn tenant(isolation: Isolation) -> RoutedTenant {
        RoutedTenant::new(
            Tenant {
                name: "Acme".into(),
                schema: "acme_s".into(),
                isolation,
                ..Tenant::example("acme")
            },
            "acme.test".into(),
        )
    }

    #[test]
    fn spoofed_tenant_headers_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert("x-tenant-id", HeaderValue::from_static("evil"));
        h.append("x-tenant-id", HeaderValue::from_static("evil2"));
        h.insert("X-Tenant-Schema", HeaderValue::from_static("public"));
        h.insert("x-tenant-anything", HeaderValue::from_static("x"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_tenant_headers(&mut h, &names());
        inject_tenant(&mut h, &names(), &tenant(Isolation::Schema));
        assert_eq!(
            h.get_all("x-tenant-id").iter().collect::<Vec<_>>(),
            ["acme"]
        );
        assert_eq!(h["x-tenant-schema"], "acme_s");
        assert!(h.get("x-tenant-anything").is_none());
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn isolation_decides_which_headers_are_injected() {
        let mut h = HeaderMap::new();
        inject_tenant(&mut h, &names(), &tenant(Isolation::Table));
        assert_eq!(h.len(), 1);
        let mut h = HeaderMap::new();
        inject_tenant(&mut h, &names(), &tenant(Isolation::Database));
        assert_eq!(h["x-tenant-database"], "acme_s");
        let mut h = HeaderMap::new();
        inject_tenant(&mut h, &names(), &tenant(Isolation::Cache));
        assert_eq!(h["x-tenant-cache-prefix"], "acme:");
        assert!(h.get("x-tenant-schema").is_none());
    }

    #[test]
    fn a_placed_tenant_gets_its_cluster_and_spoofed_ones_go() {
        let mut placed = tenant(Isolation::Schema).tenant;
        placed.cluster = Some("eu2".into());
        let placed = RoutedTenant::new(placed, "acme.test".into());
        let mut h = HeaderMap::new();
        h.insert("x-tenant-cluster", HeaderValue::from_static("evil"));
        strip_tenant_headers(&mut h, &names());
        inject_tenant(&mut h, &names(), &placed);
        assert_eq!(
            h.get_all("x-tenant-cluster").iter().collect::<Vec<_>>(),
            ["eu2"]
        );
        let mut h = HeaderMap::new();
        inject_tenant(&mut h, &names(), &tenant(Isolation::Schema));
        assert!(h.get("x-tenant-cluster").is_none());
    }

    #[test]
    fn hop_by_hop_headers_and_connection_listed_ones_go() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-keep"]);
    }

    #[test]
    fn forwarded_for_appends_to_the_chain() {
        let mut h = HeaderMap::new();
        let peer = PeerValues::new([10, 0, 0, 9].into(), "http");
        set_forwarded(&mut h, &peer, Some(&HeaderValue::from_static("acme.test")));
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.9");
        h.insert(X_FORWARDED_FOR.clone(), HeaderValue::from_static("1.2.3.4"));
        set_forwarded(&mut h, &peer, None);
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.9");
        assert!(h.get(&X_FORWARDED_HOST).is_none());
        h.insert(X_FORWARDED_FOR.clone(), HeaderValue::from_static("1.2.3.4"));
        h.append(X_FORWARDED_FOR.clone(), HeaderValue::from_static("5.6.7.8"));
        set_forwarded(&mut h, &peer, None);
        assert_eq!(
            h.get_all(&X_FORWARDED_FOR).iter().collect::<Vec<_>>(),
            ["1.2.3.4, 5.6.7.8, 10.0.0.9"]
        );
    }

    #[test]
    fn real_ip_is_the_peer_and_forwarded_ends_with_it() {
        let mut h = HeaderMap::new();
        h.insert(&X_REAL_IP, HeaderValue::from_static("203.0.113.66"));
        h.insert(FORWARDED, HeaderValue::from_static("for=203.0.113.66"));
        let peer = PeerValues::new([10, 0, 0, 9].into(), "http");
        set_forwarded(&mut h, &peer, None);
        assert_eq!(h[&X_REAL_IP], "10.0.0.9");
        assert_eq!(h[FORWARDED], "for=203.0.113.66, for=10.0.0.9;proto=http");
        let v6 = PeerValues::new("2001:db8::1".parse().unwrap(), "https");
        assert_eq!(v6.forwarded, "for=\"[2001:db8::1]\";proto=https");
    }

    #[test]
    fn request_ids_are_kept_when_valid() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(ensure_request_id(&mut h, &names()), "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("bad id!"));
        let made = ensure_request_id(&mut h, &names());
        assert_eq!(made.len(), 32);
        assert_eq!(h["x-request-id"], made);
    }
}
