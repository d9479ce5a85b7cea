//! Property tests of the codec (proptest, stable toolchain): random heads
//! and random mutations of valid requests never yield ambiguous framing and
//! agree with a simple reference; the chunk framer passes any valid body
//! through unchanged however it is split, and agrees with itself on any
//! mutated one.

use proptest::prelude::*;

use super::chunked::pass_through;
use super::*;

/// Header lines a request may carry, framing ones included.
fn header_line() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        Just("Content-Length".to_owned()),
        Just("Transfer-Encoding".to_owned()),
        Just("content-length".to_owned()),
        Just("Connection".to_owned()),
        Just("X-Tenant-ID".to_owned()),
        "[A-Za-z][A-Za-z0-9-]{0,12}",
    ];
    let value = prop_oneof![
        Just("chunked".to_owned()),
        Just("gzip, chunked".to_owned()),
        Just("close".to_owned()),
        "[0-9]{1,4}",
        "[ -~]{0,20}",
    ];
    (name, value)
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("HEAD")];
    let path = "/[a-z0-9/?=&]{0,16}";
    (method, path, proptest::collection::vec(header_line(), 0..8)).prop_map(
        |(method, path, headers)| {
            let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: acme.test\r\n");
            for (name, value) in headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            raw.push_str("\r\n");
            raw.into_bytes()
        },
    )
}

/// The framing RFC 9112 §6 gives a request, computed the plain way.
fn reference_framing(headers: &[httparse::Header<'_>]) -> Result<RequestFraming, ()> {
    let named = |n: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(n))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
            .collect::<Vec<_>>()
    };
    let (lengths, codings) = (named("content-length"), named("transfer-encoding"));
    match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Ok(RequestFraming::Length(0)),
        ([], [te]) if te.eq_ignore_ascii_case("chunked") => Ok(RequestFraming::Chunked),
        ([cl], []) if !cl.is_empty() && cl.bytes().all(|b| b.is_ascii_digit()) => {
            cl.parse().map(RequestFraming::Length).map_err(drop)
        }
        _ => Err(()),
    }
}

/// A mutation of a valid request: a byte replaced, inserted or removed.
fn mutate(mut raw: Vec<u8>, at: usize, byte: u8, how: u8) -> Vec<u8> {
    let at = at % raw.len();
    match how % 3 {
        0 => raw[at] = byte,
        1 => raw.insert(at, byte),
        _ => {
            raw.remove(at);
        }
    }
    raw
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(0u8),
        Just(b' '),
        Just(b'\t'),
        Just(b','),
        Just(b':'),
        any::<u8>()
    ]
}

/// Checks what any accepted head must satisfy, whatever its bytes.
fn assert_unambiguous(raw: &[u8]) -> Result<(), TestCaseError> {
    let mut storage = super::header_storage();
    let Ok(Some(head)) = parse_request(raw, &mut storage, &Limits::default()) else {
        return Ok(());
    };
    let count = |n: &str| {
        head.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(n))
            .count()
    };
    let (lengths, codings) = (count("content-length"), count("transfer-encoding"));
    prop_assert!(
        lengths + codings <= 1,
        "both or repeated framing headers accepted"
    );
    prop_assert_eq!(Ok(head.framing), reference_framing(head.headers));
    prop_assert!(count("host") <= 1, "two Hosts accepted");
    let bytes = &raw[..head.head_len];
    for (i, &b) in bytes.iter().enumerate() {
        prop_assert!(b != 0, "NUL accepted");
        if b == b'\n' {
            prop_assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF accepted");
        }
        if b == b'\r' {
            prop_assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR accepted");
        }
    }
    Ok(())
}

/// A valid chunked body of these chunks, with extensions and trailers.
fn chunked_body(chunks: &[Vec<u8>], ext: bool, trailer: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        body.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
        if ext {
            body.extend_from_slice(b";a=b");
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    if trailer {
        body.extend_from_slice(b"X-Trailer: 1\r\n");
    }
    body.extend_from_slice(b"\r\n");
    body
}

/// Runs `body` through a framer in pieces cut at `cuts`.
fn in_pieces(body: &[u8], cuts: &[usize], keep: bool) -> Result<(Vec<u8>, usize, bool), H1Error> {
    let mut framer = Chunked::new(keep);
    let (mut out, mut fed, mut used) = (Vec::new(), 0, 0);
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    ends.push(body.len());
    ends.sort_unstable();
    for end in ends {
        fed = fed.max(end);
        let (piece, n) = pass_through(&mut framer, &body[used..fed])?;
        out.extend_from_slice(&piece);
        used += n;
        if framer.is_done() {
            break;
        }
    }
    Ok((out, used, framer.is_done()))
}

proptest! {
    #[test]
    fn random_heads_are_framed_as_the_reference_says(raw in request()) {
        assert_unambiguous(&raw)?;
    }

    #[test]
    fn mutated_heads_are_never_ambiguous(
        raw in request(),
        at in any::<usize>(),
        byte in interesting_byte(),
        how in any::<u8>(),
    ) {
        assert_unambiguous(&mutate(raw, at, byte, how))?;
    }

    #[test]
    fn valid_chunked_bodies_pass_unchanged_however_split(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let body = chunked_body(&chunks, ext, trailer);
        let (out, used, done) = in_pieces(&body, &cuts, true).unwrap();
        prop_assert!(done);
        prop_assert_eq!(used, body.len());
        prop_assert_eq!(&out, &body);
        let (dropped, _, _) = in_pieces(&body, &cuts, false).unwrap();
        let trailer_len = if trailer { b"X-Trailer: 1\r\n".len() } else { 0 };
        prop_assert_eq!(dropped.len(), body.len() - trailer_len);
    }

    #[test]
    fn mutated_chunked_bodies_frame_the_same_however_split(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 1..4),
        at in any::<usize>(),
        byte in interesting_byte(),
        how in any::<u8>(),
        cuts in proptest::collection::vec(any::<usize>(), 1..6),
    ) {
        let body = mutate(chunked_body(&chunks, false, false), at, byte, how);
        let whole = in_pieces(&body, &[], true);
        let split = in_pieces(&body, &cuts, true);
        prop_assert_eq!(whole.clone(), split);
        if let Ok((out, used, true)) = whole {
            // What was accepted is a prefix, and it was passed on whole.
            prop_assert_eq!(&out[..], &body[..used]);
        }
    }
}
