//! A strict decoder for `Transfer-Encoding: chunked` bodies.
//!
//! Only CRLF line endings, hexadecimal sizes without leading whitespace or
//! signs, bounded extensions and bounded trailers are accepted. The decoder
//! yields the body's data; extensions and trailers are discarded (the edge
//! re-encodes what it forwards, so every hop sees one unambiguous framing).

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size")]
    BadSize,
    #[error("chunk size too large")]
    SizeTooLarge,
    #[error("chunk extension too long")]
    ExtensionTooLong,
    #[error("missing CRLF in chunked body")]
    BadLineEnding,
    #[error("trailer section too large")]
    TrailersTooLarge,
}

const MAX_SIZE_DIGITS: u32 = 15;
const MAX_EXT: u32 = 1024;
const MAX_TRAILERS: u32 = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` read so far.
    Size {
        digits: u32,
    },
    /// After `;` in the size line.
    Ext {
        len: u32,
    },
    /// Expect LF after the size line's CR.
    SizeLf,
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// Start of a trailer line (or the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// What one call to [`Decoder::decode`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Body data found, as a range of the input.
    pub data: Option<std::ops::Range<usize>>,
}

/// Incremental chunked decoder.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    size: u64,
    trailer_bytes: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            state: State::Size { digits: 0 },
            size: 0,
            trailer_bytes: 0,
        }
    }

    /// The last chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume bytes from `input` until some body data is found, the input is
    /// exhausted, or the body ends. Call again with the rest of the input.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { digits } => {
                    let v = match b {
                        b'0'..=b'9' => Some(b - b'0'),
                        b'a'..=b'f' => Some(b - b'a' + 10),
                        b'A'..=b'F' => Some(b - b'A' + 10),
                        _ => None,
                    };
                    match v {
                        Some(v) => {
                            if digits >= MAX_SIZE_DIGITS {
                                return Err(ChunkError::SizeTooLarge);
                            }
                            self.size = (self.size << 4) | u64::from(v);
                            self.state = State::Size { digits: digits + 1 };
                        }
                        None if digits == 0 => return Err(ChunkError::BadSize),
                        None if b == b';' => self.state = State::Ext { len: 0 },
                        None if b == b'\r' => self.state = State::SizeLf,
                        None => return Err(ChunkError::BadSize),
                    }
                }
                State::Ext { len } => {
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' || (b < 0x20 && b != b'\t') || b == 0x7f {
                        return Err(ChunkError::BadLineEnding);
                    } else if len >= MAX_EXT {
                        return Err(ChunkError::ExtensionTooLong);
                    } else {
                        self.state = State::Ext { len: len + 1 };
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnding);
                    }
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data { left: self.size }
                    };
                    self.size = 0;
                }
                State::Data { left } => {
                    let avail = (input.len() - i) as u64;
                    let take = avail.min(left) as usize;
                    let rest = left - take as u64;
                    self.state = if rest == 0 {
                        State::DataCr
                    } else {
                        State::Data { left: rest }
                    };
                    return Ok(Step {
                        consumed: i + take,
                        data: Some(i..i + take),
                    });
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::BadLineEnding);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnding);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::TrailerLf { empty: true };
                    } else if b == b'\n' {
                        return Err(ChunkError::BadLineEnding);
                    } else {
                        self.count_trailer()?;
                        self.state = State::Trailer;
                    }
                }
                State::Trailer => {
                    self.count_trailer()?;
                    if b == b'\r' {
                        self.state = State::TrailerLf { empty: false };
                    } else if b == b'\n' {
                        return Err(ChunkError::BadLineEnding);
                    }
                }
                State::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnding);
                    }
                    if empty {
                        self.state = State::Done;
                        return Ok(Step {
                            consumed: i + 1,
                            data: None,
                        });
                    }
                    self.state = State::TrailerStart;
                }
                State::Done => {
                    return Ok(Step {
                        consumed: i,
                        data: None,
                    })
                }
            }
            i += 1;
        }
        Ok(Step {
            consumed: i,
            data: None,
        })
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }
}

/// Decode a whole chunked body at once (tests and fuzzing): the data and the
/// number of input bytes the body used, or `None` if the input ends early.
pub fn decode_all(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ChunkError> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() && !d.is_done() {
        let step = d.decode(&input[pos..])?;
        if let Some(r) = step.data {
            out.extend_from_slice(&input[pos + r.start..pos + r.end]);
        }
        if step.consumed == 0 {
            break;
        }
        pos += step.consumed;
    }
    Ok(d.is_done().then_some((out, pos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_stops_at_end() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: y\r\n\r\nNEXT";
        let (data, used) = decode_all(body).unwrap().unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let body = b"a\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n";
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for i in 0..body.len() {
            let s = d.decode(&body[i..=i]).unwrap();
            if let Some(r) = s.data {
                out.extend_from_slice(&body[i + r.start..i + r.end]);
            }
        }
        assert!(d.is_done());
        assert_eq!(out, b"0123456789x");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(decode_all(b"-5\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode_all(b" 5\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode_all(b"5 \r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode_all(b"0x5\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode_all(b"5\nhello"), Err(ChunkError::BadSize));
        assert_eq!(
            decode_all(b"5\r\nhelloX\r\n"),
            Err(ChunkError::BadLineEnding)
        );
        assert_eq!(
            decode_all(b"ffffffffffffffff\r\n"),
            Err(ChunkError::SizeTooLarge)
        );
        assert_eq!(decode_all(b"0\r\n\n"), Err(ChunkError::BadLineEnding));
        let ext = format!("1;{}\r\n", "a".repeat(2000));
        assert_eq!(
            decode_all(ext.as_bytes()),
            Err(ChunkError::ExtensionTooLong)
        );
        let tr = format!("0\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(decode_all(tr.as_bytes()), Err(ChunkError::TrailersTooLarge));
        assert_eq!(decode_all(b"5\r\nhel"), Ok(None));
    }
}
