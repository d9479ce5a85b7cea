//! A chunked body (RFC 9112 §7.1) validated as it streams through: chunk
//! sizes are strict hexadecimal (no sign, no `0x`, no overflow), every line
//! ends in CRLF, and extensions and trailers are bounded. The chunks pass
//! through as they are; trailers pass too, or are dropped (requests: a
//! backend must not read a trailer as a header the gateway never checked).

use super::H1Error;

/// Bytes of chunk extensions on one size line, and of the whole trailer section.
const MAX_OVERHEAD: usize = 4096;
/// Hex digits of a chunk size: 16 fill a `u64`.
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a size line.
    Size {
        digits: u8,
        value: u64,
    },
    /// After the size: optional spaces, then `;ext` or CRLF.
    SizeEnd {
        value: u64,
        ext: usize,
    },
    /// Saw the CR of a size line.
    SizeLf {
        value: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerStart {
        used: usize,
    },
    TrailerLine {
        used: usize,
    },
    TrailerLf {
        used: usize,
    },
    FinalLf,
    Done,
}

/// What the caller does with the next bytes of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Pass on this many bytes.
    Forward(usize),
    /// Consume this many bytes without passing them on (dropped trailers).
    Drop(usize),
    /// More input is needed.
    NeedMore,
    /// The body ended; the bytes after it belong to the next message.
    Done,
}

/// The state of one chunked body.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    keep_trailers: bool,
    /// Chunk payload bytes seen so far (for body limits).
    pub payload: u64,
}

impl Chunked {
    pub fn new(keep_trailers: bool) -> Chunked {
        Chunked {
            state: State::Size {
                digits: 0,
                value: 0,
            },
            keep_trailers,
            payload: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads what it can of `input` and says what to do with its first bytes.
    /// Call again with the rest until `NeedMore` or `Done`.
    pub fn next_piece(&mut self, input: &[u8]) -> Result<Piece, H1Error> {
        if self.state == State::Done {
            return Ok(Piece::Done);
        }
        if input.is_empty() {
            return Ok(Piece::NeedMore);
        }
        let drop_trailer = self.dropping(input[0]);
        let mut used = 0;
        while used < input.len() && self.state != State::Done {
            if let State::Data { left } = self.state {
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - used);
                used += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { left }
                };
                continue;
            }
            // A trailer line is dropped or kept whole: stop where that changes.
            if self.dropping(input[used]) != drop_trailer {
                break;
            }
            self.state = self.step(input[used])?;
            used += 1;
        }
        Ok(if drop_trailer {
            Piece::Drop(used)
        } else {
            Piece::Forward(used)
        })
    }

    /// Whether the byte `next` is part of a trailer line to drop (the final
    /// CRLF is always forwarded).
    fn dropping(&self, next: u8) -> bool {
        !self.keep_trailers
            && match self.state {
                State::TrailerLine { .. } | State::TrailerLf { .. } => true,
                State::TrailerStart { .. } => next != b'\r',
                _ => false,
            }
    }

    fn step(&mut self, b: u8) -> Result<State, H1Error> {
        use State::*;
        Ok(match self.state {
            Size { digits, value } => match hex(b) {
                Some(d) if digits < MAX_SIZE_DIGITS => Size {
                    digits: digits + 1,
                    value: value << 4 | u64::from(d),
                },
                None if digits > 0 => return self.size_end(value, 0, b),
                _ => return Err(H1Error::ChunkSize),
            },
            SizeEnd { value, ext } => return self.size_end(value, ext, b),
            SizeLf { value } if b == b'\n' => {
                self.payload = self.payload.saturating_add(value);
                if value == 0 {
                    TrailerStart { used: 0 }
                } else {
                    Data { left: value }
                }
            }
            DataCr if b == b'\r' => DataLf,
            DataLf if b == b'\n' => Size {
                digits: 0,
                value: 0,
            },
            TrailerStart { .. } if b == b'\r' => FinalLf,
            TrailerStart { used } | TrailerLine { used } => match b {
                b'\r' => TrailerLf { used },
                b'\n' | 0 => return Err(H1Error::ChunkSize),
                _ if used >= MAX_OVERHEAD => return Err(H1Error::ChunkOverhead),
                _ => TrailerLine { used: used + 1 },
            },
            TrailerLf { used } if b == b'\n' => TrailerStart { used },
            FinalLf if b == b'\n' => Done,
            _ => return Err(H1Error::ChunkSize),
        })
    }

    /// After the size digits: spaces or tabs, a `;` extension, then CRLF.
    fn size_end(&mut self, value: u64, ext: usize, b: u8) -> Result<State, H1Error> {
        match b {
            b'\r' => Ok(State::SizeLf { value }),
            b'\n' | 0 => Err(H1Error::ChunkSize),
            // Before any `;`, only whitespace may follow the digits.
            b' ' | b'\t' | b';' if ext == 0 => Ok(State::SizeEnd {
                value,
                ext: usize::from(b == b';'),
            }),
            _ if ext == 0 => Err(H1Error::ChunkSize),
            _ if ext >= MAX_OVERHEAD => Err(H1Error::ChunkOverhead),
            _ => Ok(State::SizeEnd {
                value,
                ext: ext + 1,
            }),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Runs a whole body through a framer and returns the bytes it forwards
/// and how many it consumed (for tests and the property tests).
#[cfg(test)]
pub fn pass_through(framer: &mut Chunked, input: &[u8]) -> Result<(Vec<u8>, usize), H1Error> {
    let (mut out, mut at) = (Vec::new(), 0);
    loop {
        match framer.next_piece(&input[at..])? {
            Piece::Forward(n) => {
                out.extend_from_slice(&input[at..at + n]);
                at += n;
            }
            Piece::Drop(n) => at += n,
            Piece::NeedMore | Piece::Done => return Ok((out, at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_pass_through_unchanged_and_stop_at_the_end() {
        let body = b"5;name=v\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let mut framer = Chunked::new(true);
        let (out, used) = pass_through(&mut framer, body).unwrap();
        assert!(framer.is_done());
        assert_eq!(out, b"5;name=v\r\nhello\r\n0\r\n\r\n");
        assert_eq!(used, out.len());
        assert_eq!(framer.payload, 5);
    }

    #[test]
    fn request_trailers_are_dropped() {
        let body = b"2\r\nhi\r\n0\r\nX-Tenant-ID: evil\r\n\r\n";
        let mut framer = Chunked::new(false);
        let (out, used) = pass_through(&mut framer, body).unwrap();
        assert!(framer.is_done());
        assert_eq!(out, b"2\r\nhi\r\n0\r\n\r\n");
        assert_eq!(used, body.len());
    }

    #[test]
    fn bad_sizes_are_refused() {
        for body in [
            &b"-5\r\nhello\r\n0\r\n\r\n"[..],
            b"+5\r\nhello\r\n",
            b"0x5\r\nhello\r\n",
            b"11111111111111111\r\n",
            b"\r\n",
            b"5\nhello\r\n",
            b"5 6\r\nhello\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n",
        ] {
            let mut framer = Chunked::new(true);
            assert!(
                pass_through(&mut framer, body).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
