//! The request-smuggling corpus, run against the codec without a socket:
//! every payload is refused, or framed one way only. `tests/h1_differential.rs`
//! keeps its own list of these attacks (each with its own path, so the
//! recording backend can tell them apart) and sends it through both engines.

use super::chunked::pass_through;
use super::*;

/// A payload and what the codec must make of it.
pub struct Case {
    pub name: &'static str,
    pub raw: Vec<u8>,
    /// `Ok(framing)` or the refusal.
    pub expect: Result<RequestFraming, H1Error>,
}

fn case(name: &'static str, raw: &[u8], expect: Result<RequestFraming, H1Error>) -> Case {
    Case {
        name,
        raw: raw.to_vec(),
        expect,
    }
}

/// Every payload of the corpus, with what the codec must make of it.
pub fn corpus() -> Vec<Case> {
    use H1Error::*;
    use RequestFraming::*;
    let mut huge = b"GET / HTTP/1.1\r\nHost: acme.test\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET / HTTP/1.1\r\nHost: acme.test\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    vec![
        case("plain GET", b"GET / HTTP/1.1\r\nHost: acme.test\r\n\r\n", Ok(Length(0))),
        case("CL.TE", b"POST / HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", Err(LengthAndChunked)),
        case("TE.CL", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", Err(LengthAndChunked)),
        case("TE with a space before the colon", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n", Err(Syntax)),
        case("TE xchunked", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: xchunked\r\n\r\n", Err(TransferCoding)),
        case("TE chunked then identity", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n", Err(TransferCoding)),
        case("TE twice", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", Err(TransferCoding)),
        case("TE with a tab", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", Ok(Chunked)),
        case("TE in upper case", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n0\r\n\r\n", Ok(Chunked)),
        case("TE with a vertical tab", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", Err(Syntax)),
        case("TE on HTTP/1.0", b"POST / HTTP/1.0\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Err(TransferCoding)),
        case("duplicate CL", b"POST / HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", Err(ContentLength)),
        case("differing CL", b"POST / HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc", Err(ContentLength)),
        case("list CL", b"POST / HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 3, 3\r\n\r\nabc", Err(ContentLength)),
        case("signed CL", b"POST / HTTP/1.1\r\nHost: acme.test\r\nContent-Length: +3\r\n\r\nabc", Err(ContentLength)),
        case("CL overflow", b"POST / HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 99999999999999999999\r\n\r\n", Err(ContentLength)),
        case("chunk size overflow", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", Ok(Chunked)),
        case("bare LF", b"GET / HTTP/1.1\nHost: acme.test\n\n", Err(BareLineEnding)),
        case("bare LF in one line", b"GET / HTTP/1.1\r\nHost: acme.test\nX-A: b\r\n\r\n", Err(BareLineEnding)),
        case("bare CR", b"GET / HTTP/1.1\r\nHost: acme.test\rX-A: b\r\n\r\n", Err(Syntax)),
        case("NUL in a value", b"GET / HTTP/1.1\r\nHost: acme.test\r\nX-A: a\0b\r\n\r\n", Err(Syntax)),
        case("obs-fold", b"GET / HTTP/1.1\r\nHost: acme.test\r\nX-A: a\r\n b\r\n\r\n", Err(ObsFold)),
        case("obs-fold of TE", b"POST / HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", Err(ObsFold)),
        case("absolute-form with another host", b"GET http://evil.test/ HTTP/1.1\r\nHost: acme.test\r\n\r\n", Err(TargetHost)),
        case("absolute-form with user info", b"GET http://acme.test@evil.test/ HTTP/1.1\r\nHost: acme.test\r\n\r\n", Err(Syntax)),
        case("two Hosts", b"GET / HTTP/1.1\r\nHost: acme.test\r\nHost: evil.test\r\n\r\n", Err(TwoHosts)),
        case("no Host", b"GET / HTTP/1.1\r\n\r\n", Err(MissingHost)),
        case("huge header", &huge, Err(HeadTooLarge)),
        case("very many headers", &many, Err(TooManyHeaders)),
        case("HTTP/2 request line", b"GET / HTTP/2.0\r\nHost: acme.test\r\n\r\n", Err(Version)),
    ]
}

#[test]
fn every_payload_is_refused_or_framed_one_way() {
    for case in corpus() {
        let mut storage = super::header_storage();
        let got = parse_request(&case.raw, &mut storage, &Limits::default())
            .map(|head| head.expect("the corpus holds whole heads").framing);
        assert_eq!(got, case.expect, "{}", case.name);
        if let Err(e) = got {
            assert!(e.status().is_client_error(), "{}: {e}", case.name);
        }
    }
}

#[test]
fn an_overflowing_chunk_size_is_refused_by_the_framer() {
    let raw = corpus()
        .into_iter()
        .find(|c| c.name == "chunk size overflow")
        .unwrap()
        .raw;
    let mut storage = super::header_storage();
    let head_len = parse_request(&raw, &mut storage, &Limits::default())
        .unwrap()
        .unwrap()
        .head_len;
    let mut framer = Chunked::new(false);
    assert_eq!(
        pass_through(&mut framer, &raw[head_len..]),
        Err(H1Error::ChunkSize)
    );
}

#[test]
fn refusals_map_to_400_413_and_431() {
    assert_eq!(H1Error::LengthAndChunked.status(), 400);
    assert_eq!(H1Error::BodyTooLarge.status(), 413);
    assert_eq!(H1Error::HeadTooLarge.status(), 431);
    assert_eq!(H1Error::TooManyHeaders.status(), 431);
}
