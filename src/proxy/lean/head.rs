//! The prepare phase of the lean path, written straight into output bytes:
//! the upstream request head (the client's headers minus hop-by-hop ones and
//! tenant ones, plus ours), the client's response head, and the gateway's own
//! short answers. The rules are those of `proxy::headers`, on bytes.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;

use super::super::h1::{is_hop_by_hop, RequestFraming, RequestHead, ResponseHead};
use super::super::headers::{is_valid_request_id, new_request_id, HeaderNames, PeerValues};
use super::super::signing::Signer;
use super::super::ProxyBody;
use crate::routing::RoutedTenant;

/// Headers the gateway sets itself on the way upstream (the client's copies
/// are folded into ours or dropped).
const SET_BY_US: [&[u8]; 5] = [
    b"x-forwarded-for",
    b"forwarded",
    b"x-real-ip",
    b"x-forwarded-proto",
    b"x-forwarded-host",
];

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the request head for the backend to `out`; returns the request id.
pub fn upstream_request(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    names: &HeaderNames,
    tenant: &RoutedTenant,
    peer: &PeerValues,
    signer: Option<&Signer>,
) -> HeaderValue {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let request_id_name = names.request_id.as_str().as_bytes();
    let mut request_id = None;
    let mut host = None;
    for h in head.headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            host = Some(h.value);
        } else if name.eq_ignore_ascii_case(request_id_name) {
            if request_id.is_none() && is_valid_request_id(h.value) {
                request_id = HeaderValue::from_bytes(h.value).ok();
            }
            continue;
        } else if is_hop_by_hop(name)
            || names.is_tenant_name(name)
            || SET_BY_US.iter().any(|n| name.eq_ignore_ascii_case(n))
            || (!name.eq_ignore_ascii_case(b"content-length") && head.connection_lists(name))
        {
            continue;
        }
        header(out, name, h.value);
    }
    if host.is_none() {
        header(out, b"host", head.host);
    }
    if head.framing == RequestFraming::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }

    header(
        out,
        names.tenant_id.as_str().as_bytes(),
        tenant.id_value.as_bytes(),
    );
    let injected = [
        (&names.schema, &tenant.schema_value),
        (&names.database, &tenant.database_value),
        (&names.cluster, &tenant.cluster_value),
        (&names.cache_prefix, &tenant.cache_prefix_value),
    ];
    for (name, value) in injected {
        if let Some(value) = value {
            header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    chain(out, b"x-forwarded-for", head, peer.ip.as_bytes());
    chain(out, b"forwarded", head, peer.forwarded.as_bytes());
    header(out, b"x-real-ip", peer.ip.as_bytes());
    header(out, b"x-forwarded-proto", peer.proto.as_bytes());
    if let Some(host) = host {
        header(out, b"x-forwarded-host", host);
    }
    let request_id = request_id.unwrap_or_else(new_request_id);
    header(out, request_id_name, request_id.as_bytes());
    if let Some(signer) = signer {
        let schema = tenant
            .schema_value
            .as_ref()
            .map_or(&b""[..], |v| v.as_bytes());
        let signature = signer.sign_now(tenant.id_value.as_bytes(), schema, request_id.as_bytes());
        header(
            out,
            names.signature.as_str().as_bytes(),
            signature.as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    request_id
}

/// One header line for a chain: every line the client sent, then ours.
fn chain(out: &mut Vec<u8>, name: &[u8], head: &RequestHead<'_, '_>, last: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    for value in head.values(name) {
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(last);
    out.extend_from_slice(b"\r\n");
}

/// Appends the client's response head: the backend's status and headers,
/// minus hop-by-hop ones and its request id, plus ours.
pub fn client_response(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_, '_>,
    request_id_name: &[u8],
    request_id: &[u8],
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(head.status).as_slice());
    out.push(b' ');
    out.extend_from_slice(head.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in head.headers {
        let name = h.name.as_bytes();
        if head.is_hop_by_hop(name) || name.eq_ignore_ascii_case(request_id_name) {
            continue;
        }
        header(out, name, h.value);
    }
    header(out, request_id_name, request_id);
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn itoa3(status: u16) -> [u8; 3] {
    let status = status.clamp(100, 999);
    [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]
}

/// Appends one of the gateway's own answers (a short text body).
pub async fn own_answer(
    out: &mut Vec<u8>,
    response: Response<ProxyBody>,
    request_id: Option<(&[u8], &[u8])>,
    keep_alive: bool,
    to_head: bool,
) {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_or(Bytes::new(), |b| b.to_bytes());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    date(out);
    if let Some((name, value)) = request_id {
        header(out, name, value);
    }
    header(out, b"content-length", body.len().to_string().as_bytes());
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !to_head {
        out.extend_from_slice(&body);
    }
}

thread_local! {
    /// This worker's `Date` value and the second it was formatted for.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends a `Date` header (RFC 9110 §6.6.1), formatted at most once a
/// second per worker.
fn date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        header(out, b"date", cached.1.as_bytes());
    });
}
