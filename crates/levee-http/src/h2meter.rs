//! A byte-level HTTP/2 frame meter for the client-to-edge direction.
//!
//! The edge passes every byte a client sends through [`FrameMeter::feed`]
//! before the HTTP/2 library sees it. The meter reads only the 9-byte frame
//! headers, counts control frames per time window and CONTINUATION frames per
//! header block, and reports the first limit crossed as a [`Flood`]. It does
//! not decode HPACK or validate frames (the HTTP/2 library does that).
//! Time is a parameter (milliseconds from any origin), so tests are exact.

/// Per-connection limits, counted over a window of `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    pub window_ms: u64,
    pub max_rst: u32,
    pub max_ping: u32,
    pub max_settings: u32,
    pub max_empty_data: u32,
    pub max_window_update: u32,
    /// CONTINUATION frames in one header block.
    pub max_continuation: u32,
}

/// Which limit a client crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Flood {
    #[error("RST_STREAM flood (rapid reset)")]
    Rst,
    #[error("PING flood")]
    Ping,
    #[error("SETTINGS flood")]
    Settings,
    #[error("empty DATA frame flood")]
    EmptyData,
    #[error("WINDOW_UPDATE flood")]
    WindowUpdate,
    #[error("CONTINUATION flood")]
    Continuation,
}

impl Flood {
    pub fn label(self) -> &'static str {
        match self {
            Flood::Rst => "h2_rst_flood",
            Flood::Ping => "h2_ping_flood",
            Flood::Settings => "h2_settings_flood",
            Flood::EmptyData => "h2_empty_data_flood",
            Flood::WindowUpdate => "h2_window_update_flood",
            Flood::Continuation => "h2_continuation_flood",
        }
    }
    pub const ALL: [Flood; 6] = [
        Flood::Rst,
        Flood::Ping,
        Flood::Settings,
        Flood::EmptyData,
        Flood::WindowUpdate,
        Flood::Continuation,
    ];
}

const PREFACE_LEN: usize = 24;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Counts frames as bytes pass.
#[derive(Debug, Clone)]
pub struct FrameMeter {
    limits: FloodLimits,
    preface_left: usize,
    header: [u8; 9],
    header_len: usize,
    payload_left: u64,
    in_header_block: bool,
    continuations: u32,
    window_start: u64,
    counts: [u32; 5],
    tripped: Option<Flood>,
    frames: u64,
    /// The client's passive fingerprint, read from its first frames.
    fp: crate::h2fp::H2Fingerprint,
}

impl FrameMeter {
    /// A meter for a connection whose first bytes are the client preface.
    pub fn new(limits: FloodLimits, now_ms: u64) -> Self {
        FrameMeter {
            limits,
            preface_left: PREFACE_LEN,
            header: [0; 9],
            header_len: 0,
            payload_left: 0,
            in_header_block: false,
            continuations: 0,
            window_start: now_ms,
            counts: [0; 5],
            tripped: None,
            frames: 0,
            fp: crate::h2fp::H2Fingerprint::default(),
        }
    }

    /// The first flood seen, if any; once tripped the meter stays tripped.
    pub fn tripped(&self) -> Option<Flood> {
        self.tripped
    }

    /// Frames seen so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The client's HTTP/2 fingerprint (whole once its first HEADERS frame passed).
    pub fn fingerprint(&self) -> &crate::h2fp::H2Fingerprint {
        &self.fp
    }

    /// Account for `bytes` received at `now_ms`.
    pub fn feed(&mut self, mut bytes: &[u8], now_ms: u64) -> Result<(), Flood> {
        if let Some(f) = self.tripped {
            return Err(f);
        }
        if self.preface_left > 0 {
            let n = self.preface_left.min(bytes.len());
            self.preface_left -= n;
            bytes = &bytes[n..];
        }
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = (self.payload_left.min(bytes.len() as u64)) as usize;
                self.payload_left -= n as u64;
                if !self.fp.done() {
                    self.fp.payload(&bytes[..n], self.payload_left == 0);
                }
                bytes = &bytes[n..];
                continue;
            }
            let need = 9 - self.header_len;
            let n = need.min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 9 {
                self.header_len = 0;
                let h = self.header;
                let len = u64::from(u32::from_be_bytes([0, h[0], h[1], h[2]]));
                self.payload_left = len;
                if !self.fp.done() {
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    self.fp.start(h[3], h[4], stream, len);
                }
                if let Err(f) = self.on_frame(h[3], h[4], len, now_ms) {
                    self.tripped = Some(f);
                    return Err(f);
                }
            }
        }
        Ok(())
    }

    fn on_frame(&mut self, kind: u8, flags: u8, len: u64, now_ms: u64) -> Result<(), Flood> {
        self.frames += 1;
        if now_ms.saturating_sub(self.window_start) >= self.limits.window_ms {
            self.window_start = now_ms;
            self.counts = [0; 5];
        }
        let l = self.limits;
        let (slot, max, flood) = match kind {
            RST_STREAM => (0, l.max_rst, Flood::Rst),
            PING if flags & ACK == 0 => (1, l.max_ping, Flood::Ping),
            SETTINGS if flags & ACK == 0 => (2, l.max_settings, Flood::Settings),
            DATA if len == 0 && flags & END_STREAM == 0 => (3, l.max_empty_data, Flood::EmptyData),
            WINDOW_UPDATE => (4, l.max_window_update, Flood::WindowUpdate),
            HEADERS | PUSH_PROMISE => {
                self.in_header_block = flags & END_HEADERS == 0;
                self.continuations = 0;
                return Ok(());
            }
            CONTINUATION => {
                self.continuations += 1;
                if self.continuations > l.max_continuation {
                    return Err(Flood::Continuation);
                }
                if flags & END_HEADERS != 0 {
                    self.in_header_block = false;
                    self.continuations = 0;
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.counts[slot] += 1;
        if self.counts[slot] > max {
            return Err(flood);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: FloodLimits = FloodLimits {
        window_ms: 1000,
        max_rst: 3,
        max_ping: 2,
        max_settings: 2,
        max_empty_data: 2,
        max_window_update: 5,
        max_continuation: 2,
    };

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        v.extend_from_slice(payload);
        v
    }

    fn with_preface(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut v = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for f in frames {
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn ping_flood_trips_within_window_only() {
        let mut m = FrameMeter::new(L, 0);
        let p = frame(PING, 0, &[0; 8]);
        assert!(m.feed(&with_preface(&[p.clone(), p.clone()]), 10).is_ok());
        // A new window resets the count.
        assert!(m.feed(&p, 1500).is_ok());
        assert!(m.feed(&p, 1501).is_ok());
        assert_eq!(m.feed(&p, 1502), Err(Flood::Ping));
        assert_eq!(m.tripped(), Some(Flood::Ping));
        // PING ACKs are not counted.
        let mut m = FrameMeter::new(L, 0);
        let ack = frame(PING, ACK, &[0; 8]);
        assert!(m
            .feed(&with_preface(&[ack.clone(), ack.clone(), ack]), 0)
            .is_ok());
    }

    #[test]
    fn continuation_flood_per_block() {
        let mut m = FrameMeter::new(L, 0);
        let h = frame(HEADERS, 0, &[0; 3]);
        let c = frame(CONTINUATION, 0, &[0; 1]);
        let c_end = frame(CONTINUATION, END_HEADERS, &[0; 1]);
        assert!(m
            .feed(&with_preface(&[h.clone(), c.clone(), c_end]), 0)
            .is_ok());
        assert!(m.feed(&h, 0).is_ok());
        assert!(m.feed(&c, 0).is_ok());
        assert!(m.feed(&c, 0).is_ok());
        assert_eq!(m.feed(&c, 0), Err(Flood::Continuation));
    }

    #[test]
    fn byte_at_a_time_and_payload_skipping() {
        let mut m = FrameMeter::new(L, 0);
        // Payload bytes that look like frame headers must be skipped.
        let data = frame(DATA, END_STREAM, &frame(RST_STREAM, 0, &[0; 4]).repeat(10));
        let rst = frame(RST_STREAM, 0, &[0; 4]);
        let all = with_preface(&[data, rst.clone(), rst.clone(), rst.clone(), rst]);
        let mut res = Ok(());
        for b in &all {
            res = m.feed(std::slice::from_ref(b), 5);
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(Flood::Rst));
        assert_eq!(m.frames(), 5);
    }

    #[test]
    fn empty_data_and_settings() {
        let mut m = FrameMeter::new(L, 0);
        let e = frame(DATA, 0, &[]);
        let fin = frame(DATA, END_STREAM, &[]);
        assert!(m
            .feed(&with_preface(&[e.clone(), fin.clone(), fin, e.clone()]), 0)
            .is_ok());
        assert_eq!(m.feed(&e, 0), Err(Flood::EmptyData));
        let mut m = FrameMeter::new(L, 0);
        let s = frame(SETTINGS, 0, &[]);
        assert_eq!(
            m.feed(&with_preface(&[s.clone(), s.clone(), s]), 0),
            Err(Flood::Settings)
        );
    }

    #[test]
    fn the_clients_fingerprint_is_read_as_bytes_pass() {
        let mut m = FrameMeter::new(L, 0);
        let mut settings = frame(SETTINGS, 0, &[0, 4, 0, 0x60, 0, 0]);
        settings[8] = 0;
        let mut wu = frame(WINDOW_UPDATE, 0, &15_663_105u32.to_be_bytes());
        wu[8] = 0;
        let headers = frame(HEADERS, END_HEADERS, &[0x82, 0x87, 0x84, 0x81]);
        let ping = frame(PING, 0, &[0; 8]);
        let bytes = with_preface(&[settings, ping, wu, headers]);
        for b in bytes.chunks(3) {
            m.feed(b, 0).unwrap();
        }
        assert_eq!(
            m.fingerprint().text().unwrap(),
            "4:6291456|15663105|0|m,s,p,a"
        );
    }
}
