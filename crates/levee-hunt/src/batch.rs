//! Reading logs and matching them in batches: a file (gzip decoded, up to
//! a decompression-bomb limit) is read into one buffer per batch, bounded
//! in lines and bytes (a line longer than 1 MiB is cut and its rest skipped
//! in bounded memory); each batch is matched on several threads in
//! contiguous slices (parse, indicators, the rules' prefilter, the rules,
//! the correlation events they feed), and the results come back in order,
//! so that the hunt's state is built exactly as on one thread.

use crate::{fields, ioc, logs, prefilter, HuntError, Options};
use levee_sigma::correlation::Correlation;
use levee_sigma::{Event as _, Rule};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// A gzip file may expand to this many times its size (and at least
/// `BOMB_FLOOR` bytes) before it is taken for a decompression bomb: real
/// access logs compress 5 to 20 times.
pub(crate) const BOMB_RATIO: u64 = 200;
const BOMB_FLOOR: u64 = 256 << 20;

/// Set when a gzip stream was cut at the bomb limit.
pub(crate) type BombFlag = std::rc::Rc<std::cell::Cell<bool>>;

/// Ends a stream after `left` bytes, saying so.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            self.hit.set(true);
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A file (or standard input) as lines; gzip is decoded, up to the bomb
/// limit (the flag says it was reached).
pub(crate) fn open(p: &Path) -> Result<(Box<dyn BufRead>, BombFlag), HuntError> {
    let hit = std::rc::Rc::new(std::cell::Cell::new(false));
    if p == Path::new("-") {
        return Ok((Box::new(BufReader::new(std::io::stdin())), hit));
    }
    let f = std::fs::File::open(p).map_err(|e| HuntError::Read {
        path: p.display().to_string(),
        source: e,
    })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::new(f);
    let gz = r.fill_buf().is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    if gz {
        let capped = Capped {
            inner: flate2::read::MultiGzDecoder::new(r),
            left: size.saturating_mul(BOMB_RATIO).max(BOMB_FLOOR),
            hit: std::rc::Rc::clone(&hit),
        };
        Ok((Box::new(BufReader::new(capped)), hit))
    } else {
        Ok((Box::new(r), hit))
    }
}

/// Lines matched per batch, at most (and bytes, below).
pub(crate) const BATCH_LINES: usize = 8192;
pub(crate) const BATCH_BYTES: usize = 32 << 20;

/// A line as read: its place in the batch's buffer.
pub(crate) struct RawLine {
    pub line_no: u64,
    pub start: usize,
    pub end: usize,
    pub too_long: bool,
}

/// Lines read, in one buffer.
#[derive(Default)]
pub(crate) struct Batch {
    pub data: Vec<u8>,
    pub lines: Vec<RawLine>,
}

/// Skip to the end of the current line, in bounded memory.
pub(crate) fn skip_line(r: &mut dyn BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

/// What a line gave, before it is taken into the hunt's state.
pub(crate) enum Out<'a> {
    Blank,
    Malformed { line_no: u64, reason: &'static str },
    Outside,
    Rec(Box<Matched<'a>>),
}

/// A record and what matched it: indicators (index, field) and rules
/// (index, with the correlation events they feed: correlation, position,
/// group, value).
pub(crate) struct Matched<'a> {
    pub line_no: u64,
    pub text: &'a str,
    pub rec: logs::Record<'a>,
    pub iocs: Vec<(usize, &'static str)>,
    pub hits: Vec<(usize, CorrEvents)>,
    /// The detectors' searches that may find something (`detect::Hints`).
    pub hints: u32,
}

pub(crate) type CorrEvents = Vec<(usize, usize, Vec<String>, String)>;

/// A matching thread's buffers, reused from line to line.
#[derive(Default)]
struct Scratch {
    pre: crate::prefilter::Scratch,
    cands: Vec<usize>,
    lower: String,
}

/// Make `b` valid UTF-8 in place, each byte of an invalid sequence becoming
/// `?` (what `from_utf8_lossy` would show as U+FFFD, which is longer).
fn fix_utf8(mut b: &mut [u8]) {
    loop {
        match std::str::from_utf8(b) {
            Ok(_) => return,
            Err(e) => {
                let bad = e.error_len().unwrap_or(b.len() - e.valid_up_to());
                let start = e.valid_up_to();
                for x in &mut b[start..start + bad] {
                    *x = b'?';
                }
                b = &mut b[start + bad..];
            }
        }
    }
}

/// The read-only part of a hunt, shared by the threads that match.
pub(crate) struct Work<'a> {
    pub rules: &'a [Rule],
    pub prefilter: &'a prefilter::Prefilter,
    pub index: &'a ioc::Index,
    pub uses: &'a [Vec<(usize, usize)>],
    pub corrs: &'a [Correlation],
    pub opts: &'a Options,
}

impl Work<'_> {
    /// Match a batch on `threads` threads (contiguous slices), in order.
    pub(crate) fn batch<'b>(&self, batch: &'b mut Batch, threads: usize) -> Vec<Out<'b>> {
        // A line that is not UTF-8 is made so in place (each byte of a bad
        // sequence becomes `?`: U+FFFD, as `from_utf8_lossy` shows it, is
        // longer), so that every record can borrow from the batch's buffer.
        for l in &batch.lines {
            let b = &mut batch.data[l.start..l.end];
            if std::str::from_utf8(b).is_err() {
                fix_utf8(b);
            }
        }
        let batch: &'b Batch = batch;
        let data = batch.data.as_slice();
        if threads <= 1 || batch.lines.len() < 256 {
            let mut s = Scratch::default();
            return batch
                .lines
                .iter()
                .map(|l| self.line(data, l, &mut s))
                .collect();
        }
        let per = batch.lines.len().div_ceil(threads);
        std::thread::scope(|sc| {
            let handles: Vec<_> = batch
                .lines
                .chunks(per)
                .map(|chunk| {
                    sc.spawn(move || {
                        let mut s = Scratch::default();
                        chunk
                            .iter()
                            .map(|l| self.line(data, l, &mut s))
                            .collect::<Vec<Out<'b>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    fn line<'b>(&self, data: &'b [u8], l: &RawLine, s: &mut Scratch) -> Out<'b> {
        let Ok(text) = std::str::from_utf8(&data[l.start..l.end]) else {
            // Made UTF-8 above.
            return Out::Malformed {
                line_no: l.line_no,
                reason: "not UTF-8",
            };
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return Out::Blank;
        }
        let rec = if l.too_long {
            Err("line longer than 1 MiB")
        } else {
            logs::parse_line(text, &self.opts.json)
        };
        let rec = match rec {
            Ok(r) => r,
            Err(reason) => {
                return Out::Malformed {
                    line_no: l.line_no,
                    reason,
                }
            }
        };
        if self.opts.from_ms.is_some_and(|f| rec.ts_ms < f)
            || self.opts.to_ms.is_some_and(|t| rec.ts_ms >= t)
        {
            return Out::Outside;
        }
        let iocs = self.index.matches(&rec);
        let mut hits = Vec::new();
        // A verbatim line is searched as it is, and made an event (its
        // lower case) only when a rule may match it.
        let (hints, ev) = match fields::Hay::verbatim(&rec, text) {
            Some(hay) => {
                let hints = self.prefilter.candidates(&hay, &mut s.pre, &mut s.cands);
                let ev =
                    (!s.cands.is_empty()).then(|| fields::WebEvent::new(&rec, text, &mut s.lower));
                (hints, ev)
            }
            None => {
                let ev = fields::WebEvent::new(&rec, text, &mut s.lower);
                let hints = self
                    .prefilter
                    .candidates(&ev.hay(), &mut s.pre, &mut s.cands);
                (hints, Some(ev))
            }
        };
        if let Some(ev) = ev {
            for &i in s.cands.iter() {
                if !self.rules[i].matches(&ev) {
                    continue;
                }
                let corr = self.uses[i]
                    .iter()
                    .map(|&(ci, pos)| {
                        let c = &self.corrs[ci];
                        let group = c
                            .group_by
                            .iter()
                            .map(|f| ev.field(f).map(|v| v.into_owned()).unwrap_or_default())
                            .collect();
                        let value = c
                            .field
                            .as_deref()
                            .and_then(|f| ev.field(f).map(|v| v.into_owned()))
                            .unwrap_or_default();
                        (ci, pos, group, value)
                    })
                    .collect();
                hits.push((i, corr));
            }
        }
        Out::Rec(Box::new(Matched {
            line_no: l.line_no,
            text,
            rec,
            iocs,
            hits,
            hints,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_become_question_marks_in_place() {
        let mut b = b"GET /a\xff\xfeb \xe2\x82 ok \xe2\x82\xac".to_vec();
        let n = b.len();
        fix_utf8(&mut b);
        assert_eq!(b.len(), n);
        assert_eq!(
            std::str::from_utf8(&b).ok(),
            Some("GET /a??b ?? ok \u{20ac}")
        );
    }
}
