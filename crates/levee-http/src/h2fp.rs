//! The passive HTTP/2 fingerprint of a client (Akamai, "Passive
//! Fingerprinting of HTTP/2 Clients", Black Hat EU 2017), from the frames it
//! sends before its first request: `S|WU|P|PS`, where `S` is its first
//! SETTINGS frame (`id:value` joined by `;`), `WU` the increment of its first
//! connection-level WINDOW_UPDATE (`00` if none), `P` its PRIORITY frames
//! (`stream:exclusive:dependency:weight` joined by `,`; `0` if none), and `PS`
//! the order of the pseudo-fields of its first HEADERS frame (`m,a,s,p`).
//!
//! Browsers, HTTP libraries and bots differ in all four. The pseudo-field
//! order is read from the HPACK block without decoding it: a first request's
//! pseudo-fields are static-table references (`:authority` 1, `:method` 2–3,
//! `:path` 4–5, `:scheme` 6–7), possibly with literal values, which are
//! skipped by length. Fed by [`crate::h2meter::FrameMeter`] as frames pass;
//! it keeps at most a few hundred bytes and stops at the first HEADERS frame.

const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const SETTINGS: u8 = 0x4;
const WINDOW_UPDATE: u8 = 0x8;
const ACK: u8 = 0x1;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// At most this many bytes of a frame's payload are kept.
const CAPTURE: usize = 256;
const MAX_SETTINGS: usize = 16;
const MAX_PRIORITY: usize = 8;

/// The fingerprint being read from a connection's first frames.
#[derive(Debug, Clone, Default)]
pub struct H2Fingerprint {
    settings: Option<Vec<(u16, u32)>>,
    window: Option<u32>,
    priority: Vec<(u32, bool, u32, u8)>,
    pseudo: Vec<char>,
    done: bool,
    /// The frame being captured: (type, flags, stream), payload so far, its length.
    cur: Option<(u8, u8, u32)>,
    buf: Vec<u8>,
}

impl H2Fingerprint {
    /// Whether the first HEADERS frame has been read (the fingerprint is whole).
    pub fn done(&self) -> bool {
        self.done
    }

    /// A frame header arrived.
    pub(crate) fn start(&mut self, kind: u8, flags: u8, stream: u32, len: u64) {
        self.cur = None;
        self.buf.clear();
        if self.done {
            return;
        }
        let wanted = match kind {
            SETTINGS => flags & ACK == 0 && self.settings.is_none(),
            WINDOW_UPDATE => stream == 0 && self.window.is_none(),
            PRIORITY => self.priority.len() < MAX_PRIORITY,
            HEADERS => true,
            _ => false,
        };
        if wanted {
            self.cur = Some((kind, flags, stream));
            self.buf.reserve(len.min(CAPTURE as u64) as usize);
            if len == 0 {
                self.end();
            }
        }
    }

    /// Payload bytes of the current frame; `last` when the frame is complete.
    pub(crate) fn payload(&mut self, bytes: &[u8], last: bool) {
        if self.cur.is_none() {
            return;
        }
        let room = CAPTURE.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if last {
            self.end();
        }
    }

    fn end(&mut self) {
        let Some((kind, flags, stream)) = self.cur.take() else {
            return;
        };
        let b = std::mem::take(&mut self.buf);
        match kind {
            SETTINGS => {
                let s = b
                    .chunks_exact(6)
                    .take(MAX_SETTINGS)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect();
                self.settings = Some(s);
            }
            WINDOW_UPDATE => {
                if let [a, b2, c, d, ..] = b[..] {
                    self.window = Some(u32::from_be_bytes([a, b2, c, d]) & 0x7fff_ffff);
                }
            }
            PRIORITY => {
                if let [a, b2, c, d, w, ..] = b[..] {
                    let dep = u32::from_be_bytes([a, b2, c, d]);
                    self.priority
                        .push((stream, dep >> 31 == 1, dep & 0x7fff_ffff, w));
                }
            }
            HEADERS => {
                self.pseudo = pseudo_order(&b, flags);
                self.done = true;
            }
            _ => {}
        }
        self.buf = b;
        self.buf.clear();
    }

    /// The fingerprint text, once the first HEADERS frame has been read.
    pub fn text(&self) -> Option<String> {
        if !self.done {
            return None;
        }
        let s = self
            .settings
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(";");
        let wu = self.window.map_or("00".to_string(), |w| w.to_string());
        let p = if self.priority.is_empty() {
            "0".to_string()
        } else {
            self.priority
                .iter()
                .map(|(s, e, d, w)| format!("{s}:{}:{d}:{w}", u8::from(*e)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ps: Vec<String> = self.pseudo.iter().map(char::to_string).collect();
        Some(format!("{s}|{wu}|{p}|{}", ps.join(",")))
    }
}

/// An HPACK integer with an `n`-bit prefix at `b[*i]`; at most 4 bytes follow.
fn integer(b: &[u8], i: &mut usize, n: u32) -> Option<u64> {
    let mask = (1u64 << n) - 1;
    let mut v = u64::from(*b.get(*i)?) & mask;
    *i += 1;
    if v < mask {
        return Some(v);
    }
    for shift in 0..4u32 {
        let c = *b.get(*i)?;
        *i += 1;
        v += u64::from(c & 0x7f) << (7 * shift);
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The pseudo-fields' order at the start of a HEADERS frame's payload
/// (stops at the first regular field, anything unreadable, or the end of
/// what was captured).
fn pseudo_order(payload: &[u8], flags: u8) -> Vec<char> {
    let mut i = 0usize;
    let mut end = payload.len();
    if flags & PADDED != 0 {
        let Some(&pad) = payload.first() else {
            return Vec::new();
        };
        i = 1;
        // The padding is at the end of the whole frame, which may not all be here.
        end = end.saturating_sub(usize::from(pad)).max(i);
    }
    if flags & PRIORITY_FLAG != 0 {
        i += 5;
    }
    let b = &payload[..end.min(payload.len())];
    let mut out = Vec::new();
    while i < b.len() && out.len() < 8 {
        let first = b[i];
        let (idx, literal) = if first & 0x80 != 0 {
            (integer(b, &mut i, 7), false)
        } else if first & 0x40 != 0 {
            (integer(b, &mut i, 6), true)
        } else if first & 0x20 != 0 {
            // A dynamic table size update: no field.
            if integer(b, &mut i, 5).is_none() {
                break;
            }
            continue;
        } else {
            (integer(b, &mut i, 4), true)
        };
        let c = match idx {
            Some(1) => 'a',
            Some(2 | 3) => 'm',
            Some(4 | 5) => 'p',
            Some(6 | 7) => 's',
            _ => break,
        };
        out.push(c);
        if literal {
            // Skip the value: a length (7-bit prefix, H flag) and its bytes.
            match integer(b, &mut i, 7) {
                Some(n) => i = i.saturating_add(n as usize),
                None => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(fp: &mut H2Fingerprint, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        fp.start(kind, flags, stream, payload.len() as u64);
        if !payload.is_empty() {
            // In two pieces, as bytes arrive.
            let (a, b) = payload.split_at(payload.len() / 2);
            fp.payload(a, false);
            fp.payload(b, true);
        }
    }

    fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|(k, v)| k.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect()
    }

    #[test]
    fn chrome_like_first_frames() {
        let mut fp = H2Fingerprint::default();
        feed(
            &mut fp,
            SETTINGS,
            0,
            0,
            &settings(&[(1, 65536), (2, 0), (4, 6_291_456), (6, 262_144)]),
        );
        feed(&mut fp, WINDOW_UPDATE, 0, 0, &15_663_105u32.to_be_bytes());
        assert_eq!(fp.text(), None);
        // :method GET (2), :authority literal (1) "a.example", :scheme https (7), :path / (4).
        let mut h = vec![0x82, 0x41, 9];
        h.extend_from_slice(b"a.example");
        h.extend_from_slice(&[0x87, 0x84, 0x53, 3, b'*', b'/', b'*']);
        feed(&mut fp, HEADERS, 0x4 | 0x1, 1, &h);
        assert!(fp.done());
        assert_eq!(
            fp.text().unwrap(),
            "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"
        );
    }

    #[test]
    fn priority_frames_padding_and_no_window_update() {
        let mut fp = H2Fingerprint::default();
        feed(&mut fp, SETTINGS, 0, 0, &settings(&[(3, 100), (4, 65535)]));
        // An ACK is not the client's settings.
        feed(&mut fp, SETTINGS, ACK, 0, &[]);
        let mut p = (0x8000_0000u32 | 1).to_be_bytes().to_vec();
        p.push(200);
        feed(&mut fp, PRIORITY, 0, 3, &p);
        // Padded, with priority: pad length 2, 5 bytes of priority, then :method, :path, :scheme, :authority.
        let mut h = vec![2, 0, 0, 0, 0, 15, 0x82, 0x84, 0x86, 0x81, 0, 0];
        h.extend_from_slice(&[0, 0]);
        feed(&mut fp, HEADERS, PADDED | PRIORITY_FLAG | 0x4, 1, &h);
        assert_eq!(fp.text().unwrap(), "3:100;4:65535|00|3:1:1:200|m,p,s,a");
        // Later frames change nothing.
        feed(&mut fp, SETTINGS, 0, 0, &settings(&[(9, 1)]));
        assert_eq!(fp.text().unwrap(), "3:100;4:65535|00|3:1:1:200|m,p,s,a");
    }

    #[test]
    fn junk_never_panics_and_stays_bounded() {
        let mut fp = H2Fingerprint::default();
        feed(&mut fp, SETTINGS, 0, 0, &[1, 2, 3]);
        feed(&mut fp, WINDOW_UPDATE, 0, 0, &[1]);
        feed(&mut fp, HEADERS, PADDED, 1, &[255]);
        assert_eq!(fp.text().unwrap(), "|00|0|");
        let mut fp = H2Fingerprint::default();
        let huge = vec![0xff; 10_000];
        feed(&mut fp, HEADERS, 0, 1, &huge);
        assert!(fp.buf.capacity() <= 10_000);
        assert!(fp.text().is_some());
    }
}
