//! A response head from a backend: parsed only far enough to learn how its
//! body is framed, whether the connection can be reused, and which of its
//! headers are hop-by-hop. The bytes themselves pass through.

use std::mem::MaybeUninit;

use httparse::Header;

use super::{
    check_lines, each_connection_token, from_httparse, is_hop_by_hop, parse_length, tokens,
    values_of, H1Error, Limits,
};

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: 1xx, 204, 304, or the answer to a HEAD.
    Empty,
    Length(u64),
    /// Chunked, passed through as chunks (not re-chunked).
    Chunked,
    /// Until the backend closes the connection.
    Close,
}

/// A response head borrowed from the buffer it was read into.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    pub status: u16,
    pub minor_version: u8,
    pub reason: &'b str,
    pub headers: &'h [Header<'b>],
    pub head_len: usize,
    pub framing: ResponseFraming,
    /// The backend will take another request on this connection.
    pub keep_alive: bool,
    /// `Connection` names something besides `keep-alive` (itself hop-by-hop):
    /// only then must each header be looked up there.
    lists_others: bool,
}

impl ResponseHead<'_, '_> {
    /// Whether the header `name` must not be copied to the client as it is:
    /// hop-by-hop, or named in `Connection`. `Transfer-Encoding` is kept when
    /// the body is chunked, since its chunks pass through unchanged.
    pub fn is_hop_by_hop(&self, name: &[u8]) -> bool {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return self.framing != ResponseFraming::Chunked;
        }
        is_hop_by_hop(name)
            || (self.lists_others
                && tokens(self.values(b"connection")).any(|t| {
                    t.eq_ignore_ascii_case(name)
                        && !name.eq_ignore_ascii_case(b"content-length")
                        && !name.eq_ignore_ascii_case(b"date")
                }))
    }

    /// The values of every `name` header, in order.
    pub fn values<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'s [u8]> + 's {
        values_of(self.headers, name)
    }
}

/// Parses the head at the start of `buf`, the answer to a request whose
/// method was HEAD when `to_head`. `Ok(None)`: incomplete.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>],
    limits: &Limits,
    to_head: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, H1Error> {
    let max = limits.max_headers.min(storage.len());
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        buf,
        &mut storage[..max],
    );
    let head_len = match parsed.map_err(|e| from_httparse(e, buf))? {
        httparse::Status::Complete(n) if n <= limits.max_head => n,
        httparse::Status::Partial if buf.len() < limits.max_head => return Ok(None),
        _ => return Err(H1Error::HeadTooLarge),
    };
    check_lines(&buf[..head_len])?;
    let (Some(status), Some(minor_version)) = (res.code, res.version) else {
        return Err(H1Error::Syntax);
    };
    let headers: &'h [Header<'b>] = res.headers;
    let (mut length, mut codings) = (None, None::<&[u8]>);
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(super::trim(h.value))?;
            if length.is_some_and(|m| m != n) {
                return Err(H1Error::ContentLength);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            codings = Some(h.value);
        }
    }
    let framing = if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
        ResponseFraming::Empty
    } else if let Some(last) = codings {
        // The last line's last coding decides (§6.3): chunked, or until close.
        if length.is_some() {
            return Err(H1Error::LengthAndChunked);
        }
        let chunked = tokens(std::iter::once(last))
            .last()
            .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::Close
        }
    } else if let Some(n) = length {
        ResponseFraming::Length(n)
    } else {
        ResponseFraming::Close
    };
    let mut head = ResponseHead {
        status,
        minor_version,
        reason: res.reason.unwrap_or(""),
        headers,
        head_len,
        framing,
        keep_alive: false,
        lists_others: false,
    };
    let (mut close, mut keep_alive, mut others) = (false, false, false);
    each_connection_token(headers, |token| {
        close |= token.eq_ignore_ascii_case(b"close");
        let alive = token.eq_ignore_ascii_case(b"keep-alive");
        keep_alive |= alive;
        others |= !alive;
    });
    head.lists_others = others;
    head.keep_alive = framing != ResponseFraming::Close
        && !close
        && (minor_version == 1 || keep_alive)
        && status != 101;
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(raw: &[u8], to_head: bool) -> Result<(ResponseFraming, bool), H1Error> {
        let mut storage = crate::proxy::h1::header_storage();
        let head = parse_response(raw, &mut storage, &Limits::default(), to_head)?.unwrap();
        Ok((head.framing, head.keep_alive))
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(framing(ok, false), Ok((ResponseFraming::Length(5), true)));
        assert_eq!(framing(ok, true), Ok((ResponseFraming::Empty, true)));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(framing(chunked, false).unwrap().0, ResponseFraming::Chunked);
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert_eq!(framing(gzip, false), Ok((ResponseFraming::Close, false)));
        let none = b"HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(framing(none, false), Ok((ResponseFraming::Close, false)));
        let no_content = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            framing(no_content, false).unwrap().0,
            ResponseFraming::Empty
        );
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(both, false), Err(H1Error::LengthAndChunked));
        let differ = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(framing(differ, false), Err(H1Error::ContentLength));
    }

    #[test]
    fn connection_close_and_listed_headers_are_honoured() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nContent-Length: 0\r\n\r\n";
        let mut storage = crate::proxy::h1::header_storage();
        let head = parse_response(raw, &mut storage, &Limits::default(), false)
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        assert!(head.is_hop_by_hop(b"x-secret"));
        assert!(!head.is_hop_by_hop(b"content-length"));
    }
}
