//! Reading logs and matching them in batches. The inputs are read in turn
//! (gzip decoded, up to a decompression-bomb limit) into a batch's buffer,
//! bounded in lines and bytes (a line longer than 1 MiB is cut and its
//! rest skipped in bounded memory), and each batch is matched (parse,
//! indicators, the rules' prefilter, the rules, the correlation events they
//! feed) and then taken into the hunt's state in the order read. On one
//! thread that is done batch after batch; on several, each matching thread
//! reads the next batch itself (one at a time, behind a lock: the batch
//! then stays in its core's cache) and matches it, while the calling
//! thread takes the results in order, so the hunt's state is built exactly
//! as on one thread. Buffers go round a fixed pool: memory is bounded
//! whatever the input's size.

use crate::{fields, ioc, logs, prefilter, HuntError, Options};
use levee_sigma::correlation::Correlation;
use levee_sigma::{Event as _, Rule};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, PoisonError};

/// A gzip file may expand to this many times its size (and at least
/// `BOMB_FLOOR` bytes) before it is taken for a decompression bomb: real
/// access logs compress 5 to 20 times.
pub(crate) const BOMB_RATIO: u64 = 200;
const BOMB_FLOOR: u64 = 256 << 20;

/// Bytes read from a file (or decoded) at a time: fewer system calls.
const READ_BUF: usize = 256 << 10;

/// Set when a gzip stream was cut at the bomb limit.
pub(crate) type BombFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Ends a stream after `left` bytes, saying so.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: BombFlag,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            self.hit.store(true, std::sync::atomic::Ordering::Relaxed);
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
pub(crate) fn open(p: &Path) -> Result<(Box<dyn BufRead + Send>, BombFlag), HuntError> {
    let hit = BombFlag::default();
    if p == Path::new("-") {
        return Ok((
            Box::new(BufReader::with_capacity(READ_BUF, std::io::stdin())),
            hit,
        ));
    }
    let f = std::fs::File::open(p).map_err(|e| HuntError::Read {
        path: p.display().to_string(),
        source: e,
    })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::with_capacity(READ_BUF, f);
    let gz = r.fill_buf().is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    if gz {
        let capped = Capped {
            inner: flate2::read::MultiGzDecoder::new(r),
            left: size.saturating_mul(BOMB_RATIO).max(BOMB_FLOOR),
            hit: std::sync::Arc::clone(&hit),
        };
        Ok((Box::new(BufReader::with_capacity(READ_BUF, capped)), hit))
    } else {
        Ok((Box::new(r), hit))
    }
}

/// Lines matched per batch, at most (and bytes, below): a batch of
/// common-log lines (about 0.5 MB) and its records stay in a core's 1 MiB
/// second-level cache from reading to taking, which made a run on one
/// core 14% faster than batches of 8,192 lines (measured).
pub(crate) const BATCH_LINES: usize = 2048;
pub(crate) const BATCH_BYTES: usize = 16 << 20;
/// Longest line kept; the rest of a longer one is skipped.
const MAX_LINE: u64 = 1 << 20;

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
    /// The input they are of (its place in the list of inputs).
    pub file: usize,
    /// Bytes read (a cut line's skipped rest is not).
    pub bytes: u64,
    pub data: Vec<u8>,
    pub lines: Vec<RawLine>,
}

/// Append the next line (its newline included) to `out`, at most `max`
/// bytes of it, as `take(max).read_until(b'\n')` (with a vectorised
/// search); returns the bytes appended.
fn read_line(r: &mut dyn BufRead, out: &mut Vec<u8>, max: u64) -> std::io::Result<usize> {
    let mut n = 0usize;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = usize::try_from(max).unwrap_or(usize::MAX).saturating_sub(n);
        let buf = &buf[..buf.len().min(room)];
        if buf.is_empty() {
            return Ok(n);
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                out.extend_from_slice(&buf[..=i]);
                r.consume(i + 1);
                return Ok(n + i + 1);
            }
            None => {
                let k = buf.len();
                out.extend_from_slice(buf);
                r.consume(k);
                n += k;
            }
        }
    }
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

/// What a line gave, before it is taken into the hunt's state. A record
/// stays in the batch's vector (boxing it cost an allocation and two
/// copies a line, measured).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Out<'a> {
    Blank,
    Malformed { line_no: u64, reason: &'static str },
    Outside,
    Rec(Matched<'a>),
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

impl Batch {
    /// A line that is not UTF-8 is made so in place (each byte of a bad
    /// sequence becomes `?`: U+FFFD, as `from_utf8_lossy` shows it, is
    /// longer), so that every record can borrow from the batch's buffer.
    fn fix_utf8(&mut self) {
        if std::str::from_utf8(&self.data).is_ok() {
            return;
        }
        for l in &self.lines {
            let b = &mut self.data[l.start..l.end];
            if std::str::from_utf8(b).is_err() {
                fix_utf8(b);
            }
        }
    }
}

type Outs<'a> = Vec<Out<'a>>;

self_cell::self_cell!(
    /// A batch and what its lines gave (borrowing from its buffer).
    struct Done {
        owner: Batch,
        #[covariant]
        dependent: Outs,
    }
);

/// What goes down the pipeline, in the order read.
enum Piece<B> {
    Lines(B),
    /// The end of an input: its last line's number, and whether its gzip
    /// stream was cut at the bomb limit.
    End {
        file: usize,
        last_line: u64,
        bomb: bool,
    },
    Failed(HuntError),
}

/// What the calling thread of [`Work::run`] is given, in the order read.
pub(crate) enum Step<'o, 'a> {
    Lines {
        file: usize,
        bytes: u64,
        outs: &'o mut Vec<Out<'a>>,
    },
    End {
        file: usize,
        last_line: u64,
        bomb: bool,
    },
}

/// An input being read.
struct Open {
    file: usize,
    r: Box<dyn BufRead + Send>,
    bomb: BombFlag,
    line_no: u64,
    eof: bool,
}

/// The inputs, read in turn into batches, piece after numbered piece (the
/// matching threads share it behind a lock: each reads the batch it then
/// matches, which stays in its core's cache).
struct Reader<'a> {
    inputs: &'a [PathBuf],
    next_file: usize,
    cur: Option<Open>,
    seq: u64,
    done: bool,
}

impl<'a> Reader<'a> {
    fn new(inputs: &'a [PathBuf]) -> Reader<'a> {
        Reader {
            inputs,
            next_file: 0,
            cur: None,
            seq: 0,
            done: false,
        }
    }

    /// The next piece and its number (`None`: all read, or a read failed
    /// before). `batch` is filled and taken when the piece is lines, and
    /// left as it is otherwise.
    fn next(&mut self, batch: &mut Option<Batch>) -> Option<(u64, Piece<Batch>)> {
        if self.done {
            return None;
        }
        let piece = self.piece(batch);
        if matches!(piece, None | Some(Piece::Failed(_))) {
            self.done = true;
        }
        self.seq += 1;
        Some((self.seq - 1, piece?))
    }

    fn piece(&mut self, batch: &mut Option<Batch>) -> Option<Piece<Batch>> {
        let open = match &mut self.cur {
            Some(o) => o,
            None => {
                let file = self.next_file;
                let path = self.inputs.get(file)?;
                self.next_file += 1;
                match open(path) {
                    Ok((r, bomb)) => self.cur.insert(Open {
                        file,
                        r,
                        bomb,
                        line_no: 0,
                        eof: false,
                    }),
                    Err(e) => return Some(Piece::Failed(e)),
                }
            }
        };
        if open.eof {
            let o = self.cur.take()?;
            return Some(Piece::End {
                file: o.file,
                last_line: o.line_no,
                bomb: o.bomb.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
        let failed = |e| {
            Some(Piece::Failed(HuntError::Read {
                path: self
                    .inputs
                    .get(open.file)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source: e,
            }))
        };
        let mut b = batch.take().unwrap_or_default();
        b.file = open.file;
        b.bytes = 0;
        b.data.clear();
        b.lines.clear();
        while b.lines.len() < BATCH_LINES && b.data.len() < BATCH_BYTES {
            let start = b.data.len();
            // Bounded line length: a longer line is malformed, not a memory bomb.
            let n = match read_line(&mut *open.r, &mut b.data, MAX_LINE) {
                Ok(n) => n,
                Err(e) => return failed(e),
            };
            if n == 0 {
                open.eof = true;
                break;
            }
            b.bytes += n as u64;
            open.line_no += 1;
            let too_long = !b.data.ends_with(b"\n") && n as u64 >= MAX_LINE;
            if too_long {
                // Skip the rest of the overlong line (not kept).
                if let Err(e) = skip_line(&mut *open.r) {
                    return failed(e);
                }
            }
            b.lines.push(RawLine {
                line_no: open.line_no,
                start,
                end: b.data.len(),
                too_long,
            });
        }
        Some(Piece::Lines(b))
    }
}

/// A matched piece to `take`, in the order read; the batch's buffer back,
/// once taken (the one place both ways of running give results).
fn deliver(
    piece: Piece<Done>,
    take: &mut impl FnMut(Step<'_, '_>),
) -> Result<Option<Batch>, HuntError> {
    match piece {
        Piece::Lines(mut done) => {
            done.with_dependent_mut(|b, outs| {
                take(Step::Lines {
                    file: b.file,
                    bytes: b.bytes,
                    outs,
                });
            });
            Ok(Some(done.into_owner()))
        }
        Piece::End {
            file,
            last_line,
            bomb,
        } => {
            take(Step::End {
                file,
                last_line,
                bomb,
            });
            Ok(None)
        }
        Piece::Failed(e) => Err(e),
    }
}

impl Work<'_> {
    /// Read and match `inputs` on `threads` threads, giving each batch's
    /// results to `take` on this thread in the order read: the same calls
    /// whatever the number of threads.
    pub(crate) fn run(
        &self,
        inputs: &[PathBuf],
        threads: usize,
        mut take: impl FnMut(Step<'_, '_>),
    ) -> Result<(), HuntError> {
        if threads <= 1 {
            // All on this thread, batch after batch (on one core, threads
            // would only take turns).
            let mut reader = Reader::new(inputs);
            let mut spare = None;
            let mut s = Scratch::default();
            while let Some((_, piece)) = reader.next(&mut spare) {
                if let Some(b) = deliver(self.matched(piece, &mut s), &mut take)? {
                    spare = Some(b);
                }
            }
            return Ok(());
        }
        // Batches in flight, at most: one a matching thread, one being
        // taken, two ahead.
        let pool = threads + 3;
        let reader = Mutex::new(Reader::new(inputs));
        let (free_tx, free_rx) = mpsc::channel::<Batch>();
        for _ in 0..pool {
            let _ = free_tx.send(Batch::default());
        }
        let free_rx = Mutex::new(free_rx);
        std::thread::scope(|sc| {
            let (done_tx, done_rx) = mpsc::channel::<(u64, Piece<Done>)>();
            for _ in 0..threads {
                let (reader, free_rx, done_tx) = (&reader, &free_rx, done_tx.clone());
                sc.spawn(move || {
                    let mut s = Scratch::default();
                    let mut spare: Option<Batch> = None;
                    loop {
                        // A buffer first (the pool bounds what is in flight),
                        // then the next piece, read into it.
                        if spare.is_none() {
                            let free = free_rx
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .recv();
                            let Ok(b) = free else {
                                return;
                            };
                            spare = Some(b);
                        }
                        let next = reader
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .next(&mut spare);
                        let Some((seq, piece)) = next else {
                            return;
                        };
                        let piece = self.matched(piece, &mut s);
                        if done_tx.send((seq, piece)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            // Dropped with this closure, even on an early return: a thread
            // waiting for a buffer then stops.
            let free_tx = free_tx;
            // Results in the order read: those that come early wait here
            // (a handful: the pool bounds them).
            let mut next = 0u64;
            let mut early: BTreeMap<u64, Piece<Done>> = BTreeMap::new();
            for (seq, piece) in done_rx {
                early.insert(seq, piece);
                while let Some(piece) = early.remove(&next) {
                    next += 1;
                    if let Some(b) = deliver(piece, &mut take)? {
                        let _ = free_tx.send(b);
                    }
                }
            }
            Ok(())
        })
    }

    /// A piece read, matched (the same whatever thread does it).
    fn matched(&self, piece: Piece<Batch>, s: &mut Scratch) -> Piece<Done> {
        match piece {
            Piece::Lines(mut batch) => {
                batch.fix_utf8();
                Piece::Lines(Done::new(batch, |b| self.lines(b, s)))
            }
            Piece::End {
                file,
                last_line,
                bomb,
            } => Piece::End {
                file,
                last_line,
                bomb,
            },
            Piece::Failed(e) => Piece::Failed(e),
        }
    }

    /// Match a batch's lines, in order.
    fn lines<'b>(&self, batch: &'b Batch, s: &mut Scratch) -> Vec<Out<'b>> {
        let data = batch.data.as_slice();
        // One check of the whole buffer (made UTF-8 line by line before).
        let all = std::str::from_utf8(data).ok();
        batch
            .lines
            .iter()
            .map(|l| {
                let text = match all {
                    Some(a) => a.get(l.start..l.end),
                    None => std::str::from_utf8(&data[l.start..l.end]).ok(),
                };
                self.line(text, l, s)
            })
            .collect()
    }

    fn line<'b>(&self, text: Option<&'b str>, l: &RawLine, s: &mut Scratch) -> Out<'b> {
        let Some(text) = text else {
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
        Out::Rec(Matched {
            line_no: l.line_no,
            text,
            rec,
            iocs,
            hits,
            hints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines read as `take(max).read_until(b'\n')` reads them, across
    /// the reader's buffer: the last without a newline, a long one cut.
    #[test]
    fn lines_are_read_as_read_until_reads_them() {
        let text = b"a\n\nbcd\nlong line here\nend".to_vec();
        for cap in [1, 2, 3, 5, 64] {
            for max in [3u64, 4, 100] {
                let mut r = std::io::BufReader::with_capacity(cap, text.as_slice());
                let mut s = std::io::BufReader::with_capacity(cap, text.as_slice());
                loop {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let n = read_line(&mut r, &mut a, max).unwrap();
                    let m = (&mut s).take(max).read_until(b'\n', &mut b).unwrap();
                    assert_eq!((n, &a), (m, &b), "buffer {cap}, max {max}");
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }

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
