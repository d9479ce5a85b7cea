//! A request head: parsed in place from the connection's buffer, with its
//! body framing, Host, target path and connection options decided once.

use std::mem::MaybeUninit;

use httparse::Header;

use super::{
    check_lines, each_connection_token, from_httparse, length_or_chunked, tokens, trim, values_of,
    H1Error, Limits,
};

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// Exactly this many bytes follow the head (0 when no body was declared).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request head borrowed from the buffer it was read into.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    pub method: &'b str,
    /// The target as sent (origin-, absolute-, authority- or asterisk-form).
    pub target: &'b str,
    /// The target in origin form (`/path?query`): what goes upstream. Other
    /// forms than origin and absolute are left as they came.
    pub path: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: &'h [Header<'b>],
    /// Bytes of the head, final blank line included.
    pub head_len: usize,
    pub framing: RequestFraming,
    /// The Host header, or the authority of an absolute-form target.
    pub host: &'b [u8],
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// The `Upgrade` value, when `Connection` asks for an upgrade.
    pub upgrade: Option<&'b [u8]>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `Connection` names something besides `keep-alive` (itself hop-by-hop):
    /// only then must each header be looked up there.
    lists_others: bool,
}

impl RequestHead<'_, '_> {
    /// Whether `Connection` names `name` (so it is hop-by-hop too).
    pub fn connection_lists(&self, name: &[u8]) -> bool {
        self.lists_others
            && tokens(self.values(b"connection")).any(|t| t.eq_ignore_ascii_case(name))
    }

    /// The values of every `name` header, in order.
    pub fn values<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'s [u8]> + 's {
        values_of(self.headers, name)
    }
}

/// Parses the head at the start of `buf` into `storage` (whose length, up to
/// `limits.max_headers`, bounds the header count). `Ok(None)`: incomplete.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>],
    limits: &Limits,
) -> Result<Option<RequestHead<'h, 'b>>, H1Error> {
    let max = limits.max_headers.min(storage.len());
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(buf, &mut storage[..max]);
    let head_len = match parsed.map_err(|e| from_httparse(e, buf))? {
        httparse::Status::Complete(n) if n <= limits.max_head => n,
        httparse::Status::Partial if buf.len() < limits.max_head => return Ok(None),
        _ => return Err(H1Error::HeadTooLarge),
    };
    check_lines(&buf[..head_len])?;
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(H1Error::Syntax);
    };
    let headers: &'h [Header<'b>] = req.headers;

    let framing = match length_or_chunked(headers)? {
        Some(Some(n)) => RequestFraming::Length(n),
        Some(None) if minor_version == 0 => return Err(H1Error::TransferCoding),
        Some(None) => RequestFraming::Chunked,
        None => RequestFraming::Length(0),
    };

    let (authority, path) = split_target(target)?;
    let mut hosts = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| trim(h.value));
    let host = match (hosts.next(), hosts.next(), authority) {
        (Some(_), Some(_), _) => return Err(H1Error::TwoHosts),
        (Some(host), None, Some(authority)) if !host.eq_ignore_ascii_case(authority) => {
            return Err(H1Error::TargetHost)
        }
        (Some(host), None, _) => host,
        (None, _, Some(authority)) => authority,
        (None, _, None) => return Err(H1Error::MissingHost),
    };

    let mut head = RequestHead {
        method,
        target,
        path,
        minor_version,
        headers,
        head_len,
        framing,
        host,
        keep_alive: true,
        upgrade: None,
        expect_continue: false,
        lists_others: false,
    };
    let (mut close, mut keep_alive, mut upgrade, mut others) = (false, false, false, false);
    each_connection_token(headers, |token| {
        close |= token.eq_ignore_ascii_case(b"close");
        let alive = token.eq_ignore_ascii_case(b"keep-alive");
        keep_alive |= alive;
        others |= !alive;
        upgrade |= token.eq_ignore_ascii_case(b"upgrade");
    });
    head.lists_others = others;
    head.keep_alive = !close && (minor_version == 1 || keep_alive);
    if upgrade && minor_version == 1 {
        head.upgrade = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("upgrade"))
            .map(|h| trim(h.value));
    }
    head.expect_continue = minor_version == 1
        && head
            .values(b"expect")
            .any(|v| trim(v).eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(head))
}

/// Splits an absolute-form target (`http://host/path`) into its authority and
/// path; any other form is returned whole as the path.
fn split_target(target: &str) -> Result<(Option<&[u8]>, &str), H1Error> {
    let rest = ["http://", "https://"].iter().find_map(|scheme| {
        target
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &target[scheme.len()..])
    });
    let Some(rest) = rest else {
        return Ok((None, target));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // No user info (`http://a@b/`), no empty authority, a path to forward.
    if authority.is_empty() || authority.contains('@') || path.starts_with(['?', '#']) {
        return Err(H1Error::Syntax);
    }
    Ok((
        Some(authority.as_bytes()),
        if path.is_empty() { "/" } else { path },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Framing, Host, path and keep-alive of a parsed head.
    type Parsed = (RequestFraming, Vec<u8>, String, bool);

    fn parse(raw: &[u8]) -> Result<Option<Parsed>, H1Error> {
        let mut storage = crate::proxy::h1::header_storage();
        let head = parse_request(raw, &mut storage, &Limits::default())?;
        Ok(head.map(|h| (h.framing, h.host.to_vec(), h.path.to_owned(), h.keep_alive)))
    }

    #[test]
    fn a_plain_get_has_no_body_and_keeps_alive() {
        let (framing, host, path, keep) = parse(b"GET /a?b HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(framing, RequestFraming::Length(0));
        assert_eq!(host, b"acme.test");
        assert_eq!(path, "/a?b");
        assert!(keep);
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a").unwrap(), None);
    }

    #[test]
    fn absolute_form_gives_the_path_and_must_agree_with_host() {
        let (_, host, path, _) = parse(b"GET http://acme.test HTTP/1.1\r\nHost: ACME.test\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((host.as_slice(), path.as_str()), (&b"ACME.test"[..], "/"));
        assert_eq!(
            parse(b"GET http://evil.test/x HTTP/1.1\r\nHost: acme.test\r\n\r\n").unwrap_err(),
            H1Error::TargetHost
        );
    }

    #[test]
    fn http10_closes_unless_asked_to_keep_alive() {
        let (.., keep) = parse(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!keep);
        let (.., keep) = parse(b"GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(keep);
    }
}
