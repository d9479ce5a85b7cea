//! The request-smuggling corpus through both HTTP/1.1 engines, the lean one
//! and hyper's, to a strict recording backend: whatever each engine makes
//! of a payload (and of the request pipelined after it), the backend never
//! receives a request the client did not send, never sees a client
//! `X-Tenant-*` header, gets exactly one tenant and one schema header on
//! every request, and no malformed request is answered with a 5xx. Then
//! pipelining with a half-close on the lean path.

mod common;

use std::time::Duration;

use common::strict::{Recorded, StrictBackend};
use common::{pool_config, Gateway, GatewayOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Each payload, followed on the same connection by [`SECOND`].
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge = b"GET /huge HTTP/1.1\r\nHost: acme.test\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 512 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET /many HTTP/1.1\r\nHost: acme.test\r\n".to_vec();
    for i in 0..300 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let h = |s: &str| s.as_bytes().to_vec();
    vec![
        ("plain", h("GET /plain HTTP/1.1\r\nHost: acme.test\r\n\r\n")),
        ("spoofed tenant", h("GET /spoof HTTP/1.1\r\nHost: acme.test\r\nX-Tenant-ID: evil\r\nx-tenant-schema: public\r\nX-Tenant-Other: 1\r\n\r\n")),
        ("CL.TE", h("POST /clte HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: acme.test\r\n\r\n")),
        ("TE.CL", h("POST /tecl HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: acme.test\r\n\r\n\r\n0\r\n\r\n")),
        ("TE space before colon", h("POST /tesp HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n")),
        ("TE xchunked", h("POST /tex HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\nabcd")),
        ("TE chunked, identity", h("POST /teid HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")),
        ("TE vertical tab", h("POST /tevt HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n")),
        ("duplicate CL", h("POST /dup HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")),
        ("differing CL", h("POST /diff HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc")),
        ("list CL", h("POST /list HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 3, 3\r\n\r\nabc")),
        ("chunk size overflow", h("POST /ovf HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n")),
        ("chunk size 0x", h("POST /hex HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n")),
        ("negative chunk size", h("POST /neg HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n")),
        ("bare LF", h("GET /lf HTTP/1.1\nHost: acme.test\n\n")),
        ("NUL", h("GET /nul HTTP/1.1\r\nHost: acme.test\r\nX-A: a\0b\r\n\r\n")),
        ("obs-fold", h("GET /fold HTTP/1.1\r\nHost: acme.test\r\nX-A: a\r\n X-Tenant-ID: evil\r\n\r\n")),
        ("absolute-form with another host", h("GET http://evil.test/abs HTTP/1.1\r\nHost: acme.test\r\n\r\n")),
        ("two Hosts", h("GET /two HTTP/1.1\r\nHost: acme.test\r\nHost: evil.test\r\n\r\n")),
        ("huge header", huge),
        ("very many headers", many),
    ]
}

const SECOND: &[u8] = b"GET /second HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n";

/// The status codes of the answers on one connection, in order.
fn statuses(answer: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(answer);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text.get(at + 9..at + 12)?.parse().ok())
        .collect()
}

async fn exchange(gw: &Gateway, payload: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut sent = payload.to_vec();
    sent.extend_from_slice(SECOND);
    // The gateway may refuse and close before reading everything.
    let _ = stream.write_all(&sent).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    answer
}

/// What the client sent: the request lines of the payload and of [`SECOND`].
fn sent_by_client(payload: &[u8], request: &Recorded) -> bool {
    let first = String::from_utf8_lossy(payload);
    let line = first.split(['\r', '\n']).next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.strip_prefix("http://evil.test").unwrap_or(target);
    (request.method == method && request.path == path)
        || (request.method == "GET" && request.path == "/second")
}

/// A gateway on `engine` with tenant `acme` on `acme.test`, forwarding to `backend`.
async fn gateway(engine: &str, backend: &StrictBackend) -> Gateway {
    let config = format!(
        "data_path:\n  http1: {engine}\n{}",
        pool_config(std::slice::from_ref(&backend.url), &[])
    );
    Gateway::start(GatewayOptions::new().config(&config)).await
}

async fn run_corpus(engine: &str) {
    let backend = StrictBackend::start().await;
    let gw = gateway(engine, &backend).await;
    for (name, payload) in corpus() {
        let answer = exchange(&gw, &payload).await;
        let codes = statuses(&answer);
        assert!(
            codes.first().is_some_and(|&c| c < 500),
            "{engine}, {name}: answered {codes:?}\n{}",
            String::from_utf8_lossy(&answer[..answer.len().min(400)])
        );
        if engine == "lean" && !["plain", "spoofed tenant"].contains(&name) {
            // The lean path refuses every malformed payload outright.
            assert!(
                (400..500).contains(&codes[0]),
                "lean, {name}: answered {codes:?}"
            );
        }
        for request in backend.take() {
            assert!(
                sent_by_client(&payload, &request),
                "{engine}, {name}: the backend got a request the client did not send: {request:?}"
            );
            let tenant_headers: Vec<_> = request
                .headers
                .iter()
                .filter(|(n, _)| n.starts_with("x-tenant-"))
                .collect();
            assert_eq!(
                request.all("x-tenant-id"),
                ["acme"],
                "{engine}, {name}: {request:?}"
            );
            assert_eq!(request.all("x-tenant-schema"), ["acme"], "{engine}, {name}");
            assert_eq!(
                tenant_headers.len(),
                2,
                "{engine}, {name}: {tenant_headers:?}"
            );
        }
        assert_eq!(
            backend.violations(),
            Vec::<String>::new(),
            "{engine}, {name}"
        );
    }
}

#[tokio::test]
async fn the_smuggling_corpus_never_reaches_the_backend_through_the_lean_path() {
    run_corpus("lean").await;
}

#[tokio::test]
async fn the_smuggling_corpus_never_reaches_the_backend_through_hyper() {
    run_corpus("hyper").await;
}

/// 2,000 pipelined GETs, then the client shuts down its write side: every
/// request is answered, in order, before the connection closes.
#[tokio::test]
async fn pipelined_requests_after_a_half_close_are_all_answered_in_order() {
    let backend = StrictBackend::start().await;
    let gw = gateway("lean", &backend).await;
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..2000 {
        sent.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: acme.test\r\n\r\n").as_bytes());
    }
    let (mut read, mut write) = stream.split();
    let reading = async {
        let mut answer = Vec::new();
        read.read_to_end(&mut answer).await.map(|_| answer)
    };
    let writing = async {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    };
    let (answer, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(reading, writing)
    })
    .await
    .expect("the gateway answered and closed in time");
    let answer = String::from_utf8(answer.unwrap()).unwrap();
    let bodies: Vec<&str> = answer
        .split("HTTP/1.1 200 OK\r\n")
        .skip(1)
        .map(|response| response.split("\r\n\r\n").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(bodies.len(), 2000, "answers received");
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(*body, format!("/{i}"), "answer {i} out of order");
    }
}
