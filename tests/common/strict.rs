//! A strict recording backend on a real socket: it parses every request it
//! receives by the book (CRLF lines only, one Content-Length or `chunked`,
//! never both), records it, and answers `200` with the path as the body.
//! Anything it cannot frame is recorded as a violation: a gateway must never
//! send such bytes.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Log {
    requests: Vec<Recorded>,
    violations: Vec<String>,
}

pub struct StrictBackend {
    pub url: String,
    log: Arc<Mutex<Log>>,
}

impl StrictBackend {
    pub async fn start() -> StrictBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        StrictBackend { url, log }
    }

    /// The requests received since the last call.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.log.lock().unwrap().requests)
    }

    pub fn violations(&self) -> Vec<String> {
        self.log.lock().unwrap().violations.clone()
    }
}

async fn serve(mut stream: TcpStream, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    loop {
        match next_request(&mut stream, &mut buf).await {
            Ok(Some(request)) => {
                let body = request.path.clone();
                log.lock().unwrap().requests.push(request);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            // A connection closed mid-request is an aborted request (the
            // client's body broke off), not bytes the backend could misread.
            Err(closed) if closed.starts_with("closed mid-") => return,
            Err(violation) => {
                log.lock().unwrap().violations.push(violation);
                return;
            }
        }
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// Reads one request; `Ok(None)` on a clean close between requests.
async fn next_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<Recorded>, String> {
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if !fill(stream, buf).await? {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("closed mid-head".into())
            };
        }
    };
    let head = String::from_utf8(buf[..end].to_vec()).map_err(|_| "a head that is not UTF-8")?;
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, path, "HTTP/1.1"] = parts[..] else {
        return Err(format!("bad request line {line:?}"));
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.contains(['\r', '\n', '\0']) || line.starts_with([' ', '\t']) {
            return Err(format!("bad header line {line:?}"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(format!("no colon in {line:?}"))?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(format!("bad header name {name:?}"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Recorded {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
    };
    let lengths = request.all("content-length").len();
    let codings = request.all("transfer-encoding");
    match (lengths, codings.as_slice()) {
        (0, []) => {}
        (1, []) => {
            let n: usize = request.all("content-length")[0]
                .parse()
                .map_err(|_| "bad content-length")?;
            while buf.len() < n {
                if !fill(stream, buf).await? {
                    return Err("closed mid-body".into());
                }
            }
            request.body = buf.drain(..n).collect();
        }
        (0, ["chunked"]) => request.body = read_chunked(stream, buf).await?,
        _ => return Err(format!("ambiguous framing: {:?}", request.headers)),
    }
    Ok(Some(request))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if !fill(stream, buf).await? {
                return Err("closed mid-chunk".into());
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        buf.drain(..line_end + 2);
        let digits = line.split(';').next().unwrap_or_default().trim_end();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("bad chunk size {line:?}"));
        }
        let size = usize::from_str_radix(digits, 16).map_err(|_| format!("chunk size {line:?}"))?;
        while buf.len() < size + 2 {
            if !fill(stream, buf).await? {
                return Err("closed mid-chunk".into());
            }
        }
        if size == 0 {
            if buf.starts_with(b"\r\n") {
                buf.drain(..2);
                return Ok(body);
            }
            return Err("trailers reached the backend".into());
        }
        body.extend_from_slice(&buf[..size]);
        if &buf[size..size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        buf.drain(..size + 2);
    }
}
