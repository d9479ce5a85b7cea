//! The HTTP/1.1 wire codec of the lean path: it knows bytes, not tenants.
//! It parses request and response heads (with `httparse`) into borrowed
//! slices, decides each body's framing strictly (RFC 9112 §6), and validates
//! chunked bodies as they pass through. Every refusal is one [`H1Error`],
//! mapped to its status (400, 413, 431) in [`H1Error::status`] alone.

mod chunked;
mod request;
mod response;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod props;

pub use chunked::{Chunked, Piece};
pub use request::{parse_request, RequestFraming, RequestHead};
pub use response::{parse_response, ResponseFraming, ResponseHead};

use std::mem::MaybeUninit;

use http::StatusCode;

/// Bounds on a head: larger or longer heads are refused with 431.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of the whole head, request line and final blank line included.
    pub max_head: usize,
    /// Header lines in one head.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        // hyper's own defaults are 100 headers and ~400 KiB of buffer; 64 KiB
        // is more than any browser sends and bounds the per-connection buffer.
        Limits {
            max_head: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Room for the headers of one head (as many as `Limits::max_headers`
/// allows by default), left uninitialised: the parser writes those it finds,
/// so a request does not pay for zeroing a hundred slots.
pub type HeaderStorage<'b> = [MaybeUninit<httparse::Header<'b>>; 100];

/// An empty [`HeaderStorage`].
pub fn header_storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; 100]
}

/// Why bytes on the wire were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum H1Error {
    #[error("malformed request or status line, or header syntax")]
    Syntax,
    #[error("a line ends with a bare LF (or a bare CR)")]
    BareLineEnding,
    #[error("a header line is folded (obs-fold)")]
    ObsFold,
    #[error("the head is larger than the limit")]
    HeadTooLarge,
    #[error("the head has too many headers")]
    TooManyHeaders,
    #[error("only HTTP/1.0 and HTTP/1.1 are spoken here")]
    Version,
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    #[error("a Transfer-Encoding other than exactly `chunked`")]
    TransferCoding,
    #[error("an invalid, list-valued or repeated Content-Length")]
    ContentLength,
    #[error("missing Host header")]
    MissingHost,
    #[error("more than one Host header")]
    TwoHosts,
    #[error("the absolute-form target names another host than Host")]
    TargetHost,
    #[error("a malformed chunk size or chunk line")]
    ChunkSize,
    #[error("chunk extensions or trailers over the limit")]
    ChunkOverhead,
    #[error("the request body is larger than the limit")]
    BodyTooLarge,
}

impl H1Error {
    /// The one place a wire refusal becomes a status.
    pub fn status(self) -> StatusCode {
        match self {
            H1Error::HeadTooLarge | H1Error::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            H1Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            // A malformed request never earns a 5xx, not even an unknown
            // version (`HTTP/2.0` on an HTTP/1 connection is a client error).
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether `buf` holds the end of a head: a line feed followed by an empty
/// line (`\r\n`, or a bare `\n` for the parser to refuse).
pub fn has_blank_line(buf: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', buf).any(|i| {
        let rest = &buf[i + 1..];
        rest.starts_with(b"\n") || rest.starts_with(b"\r\n")
    })
}

/// Hop-by-hop headers (RFC 9110 §7.6.1): about one connection, never forwarded
/// as they came (lower case; compare with `eq_ignore_ascii_case`).
pub const HOP_BY_HOP: [&[u8]; 7] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
];

/// Whether `name` is a hop-by-hop header.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The values of every `name` header among `headers`, in order.
fn values_of<'s>(
    headers: &'s [httparse::Header<'_>],
    name: &'s [u8],
) -> impl Iterator<Item = &'s [u8]> + 's {
    headers
        .iter()
        .filter(move |h| h.name.as_bytes().eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Calls `f` on each token of the `Connection` headers among `headers` (the
/// loop `tokens` would make, without its iterator adapters: every head pays
/// for it).
fn each_connection_token(headers: &[httparse::Header<'_>], mut f: impl FnMut(&[u8])) {
    for h in headers {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim(token);
                if !token.is_empty() {
                    f(token);
                }
            }
        }
    }
}

/// The comma-separated tokens of header values, trimmed, empty ones skipped.
pub fn tokens<'a>(values: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = &'a [u8]> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .filter(|t| !t.is_empty())
}

/// `bytes` without leading and trailing spaces and tabs.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Refuses a bare LF or a bare CR anywhere in a head (httparse accepts a bare
/// LF as a line ending; RFC 9112 §2.2 lets a recipient, and we do, refuse
/// it), and a line that starts with a space or tab (obs-fold, §5.2).
fn check_lines(head: &[u8]) -> Result<(), H1Error> {
    let mut i = 0;
    while let Some(at) = memchr::memchr2(b'\n', b'\r', &head[i..]) {
        let at = i + at;
        if head[at] == b'\n' || head.get(at + 1) != Some(&b'\n') {
            return Err(H1Error::BareLineEnding);
        }
        i = at + 2;
        if matches!(head.get(i), Some(b' ' | b'\t')) {
            return Err(H1Error::ObsFold);
        }
    }
    Ok(())
}

/// Strict decimal Content-Length: digits only, no sign, no list, no overflow.
fn parse_length(value: &[u8]) -> Result<u64, H1Error> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(H1Error::ContentLength);
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(H1Error::ContentLength)
    })
}

/// The body framing named by a head's Content-Length and Transfer-Encoding
/// lines: `Ok(None)` when neither is present.
fn length_or_chunked(headers: &[httparse::Header<'_>]) -> Result<Option<Option<u64>>, H1Error> {
    let mut length = None;
    let mut chunked = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(H1Error::ContentLength);
            }
            length = Some(parse_length(trim(h.value))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only one coding, `chunked`, on one line: `gzip, chunked`,
            // `chunked, chunked` or a second line are all refused.
            if chunked || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err(H1Error::TransferCoding);
            }
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Err(H1Error::LengthAndChunked),
        (Some(n), false) => Ok(Some(Some(n))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

/// Maps httparse's refusals onto ours (naming obs-fold, which httparse
/// reports as a bad header name).
fn from_httparse(e: httparse::Error, buf: &[u8]) -> H1Error {
    let folded = || {
        buf.windows(3)
            .any(|w| w[..2] == *b"\r\n" && matches!(w[2], b' ' | b'\t'))
    };
    match e {
        httparse::Error::HeaderName if folded() => H1Error::ObsFold,
        httparse::Error::TooManyHeaders => H1Error::TooManyHeaders,
        httparse::Error::Version => H1Error::Version,
        httparse::Error::NewLine => H1Error::BareLineEnding,
        _ => H1Error::Syntax,
    }
}
