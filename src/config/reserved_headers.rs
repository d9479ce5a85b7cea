//! Header names the gateway owns on the way upstream: hop-by-hop headers,
//! the request's framing headers, the `X-Forwarded-*` set and the tenant
//! prefix. Config validation refuses them as injected names, and the data path
//! strips or sets them; both read the lists from here, below either.

use http::header::{
    HeaderName, CONNECTION, CONTENT_LENGTH, FORWARDED, HOST, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
pub static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Every header a client could use to pose as a tenant starts with this.
pub const TENANT_PREFIX: &[u8] = b"x-tenant-";

/// Headers about one connection rather than the request: never forwarded.
pub static HOP_BY_HOP: [&HeaderName; 7] = [
    &CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &TE,
    &TRAILER,
    &TRANSFER_ENCODING,
    &UPGRADE,
];

/// End-to-end headers that carry the request's own host and body length:
/// a client cannot drop them through `Connection`, nor config take their names.
pub static REQUEST_FRAMING: [&HeaderName; 2] = [&HOST, &CONTENT_LENGTH];

/// Why an injected header may not be called `name`, if it may not: the
/// gateway (or HTTP framing) owns these headers on the way upstream, so a
/// tenant header by that name would be dropped or would corrupt them.
pub fn reserved_reason(name: &HeaderName) -> Option<&'static str> {
    if HOP_BY_HOP.contains(&name) {
        Some("a hop-by-hop header, dropped before forwarding")
    } else if REQUEST_FRAMING.contains(&name) {
        Some("it carries the request's own host or body length")
    } else if [
        &X_FORWARDED_FOR,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
        &X_REAL_IP,
        &FORWARDED,
    ]
    .contains(&name)
    {
        Some("set by the gateway to the client's address, scheme or host")
    } else {
        None
    }
}
