//! A raw HTTP/2 client that writes frames by hand, for the flood tests.

use super::*;

pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PING: u8 = 0x6;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const CONTINUATION: u8 = 0x9;
pub(crate) const END_STREAM: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;
pub(crate) const ENHANCE_YOUR_CALM: u32 = 0xb;

pub(crate) struct H2 {
    pub s: TcpStream,
}

impl H2 {
    /// Connect with prior knowledge (h2c) and send the preface and SETTINGS.
    pub(crate) fn connect(addr: SocketAddr) -> H2 {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut h = H2 { s };
        h.s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        h.frame(SETTINGS, 0, 0, &[]);
        h
    }

    pub(crate) fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        v.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// Write a frame; errors (the server already closed) are ignored.
    pub(crate) fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let _ = self
            .s
            .write_all(&Self::frame_bytes(kind, flags, stream, payload));
    }

    /// An HPACK block of literal fields (no indexing, no Huffman).
    pub(crate) fn block(path: &str) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
        ] {
            b.push(0x00);
            b.push(n.len() as u8);
            b.extend_from_slice(n.as_bytes());
            b.push(v.len() as u8);
            b.extend_from_slice(v.as_bytes());
        }
        b
    }

    /// Read frames until a GOAWAY (its error code) or the connection ends (`None`).
    pub(crate) fn goaway(&mut self, wait: Duration) -> Option<u32> {
        let deadline = Instant::now() + wait;
        let mut buf = Vec::new();
        let mut tmp = [0u8; 65536];
        loop {
            while buf.len() >= 9 {
                let len = ((buf[0] as usize) << 16) | ((buf[1] as usize) << 8) | buf[2] as usize;
                if buf.len() < 9 + len {
                    break;
                }
                if buf[3] == GOAWAY && len >= 8 {
                    return Some(u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]));
                }
                buf.drain(..9 + len);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            match self.s.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    }
}
