//! Proof-of-work challenges and clearance tokens.
//!
//! Stateless: a challenge is an authenticated token (HMAC-SHA256 over the
//! site, the client's /24 or /64 prefix, the issue time, the difficulty and a
//! random nonce), so the edge keeps nothing per challenge; only a bounded
//! [`SpentSet`] of used nonces stops a solution being replayed. A solution is
//! a counter such that `SHA-256(token ":" counter)` starts with `bits` zero
//! bits. A clearance is an authenticated, expiring token bound to the site,
//! the client prefix and a hash of the User-Agent.
//!
//! Keys are derived from one master secret per time epoch
//! (`HMAC(master, epoch)`), so every edge holding the master secret issues
//! and accepts the same tokens without talking to the others; tokens of the
//! current and the previous epoch are accepted, and changing the master
//! secret revokes everything.
//!
//! Pure: time and randomness are parameters; no I/O, no clock.

use ring::{digest, hmac};
use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

const CHALLENGE_VERSION: u8 = 1;
const CLEARANCE_VERSION: u8 = 2;
const MAC_LEN: usize = 16;
const CHALLENGE_BODY: usize = 1 + 1 + 8 + 1 + 16;
const CHALLENGE_LEN: usize = CHALLENGE_BODY + MAC_LEN;
const CLEARANCE_BODY: usize = 1 + 1 + 8 + 8;
const CLEARANCE_LEN: usize = CLEARANCE_BODY + MAC_LEN;
/// The most work the edge will ever ask for.
pub const MAX_BITS: u8 = 32;

/// Why a challenge solution was refused. Each has a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("malformed challenge token")]
    Malformed,
    #[error("challenge signed with an unknown or retired key")]
    UnknownKey,
    #[error("challenge token forged, or for another site or client prefix")]
    BadMac,
    #[error("challenge expired")]
    Expired,
    #[error("challenge issued in the future")]
    FromFuture,
    #[error("not enough work in the solution")]
    InsufficientWork,
    #[error("solution already used")]
    Replayed,
}

impl ChallengeError {
    pub fn label(self) -> &'static str {
        match self {
            ChallengeError::Malformed => "malformed",
            ChallengeError::UnknownKey => "unknown_key",
            ChallengeError::BadMac => "bad_mac",
            ChallengeError::Expired => "expired",
            ChallengeError::FromFuture => "from_future",
            ChallengeError::InsufficientWork => "insufficient_work",
            ChallengeError::Replayed => "replayed",
        }
    }
    pub const ALL: [ChallengeError; 7] = [
        ChallengeError::Malformed,
        ChallengeError::UnknownKey,
        ChallengeError::BadMac,
        ChallengeError::Expired,
        ChallengeError::FromFuture,
        ChallengeError::InsufficientWork,
        ChallengeError::Replayed,
    ];
}

/// Why a clearance was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClearanceError {
    #[error("malformed clearance")]
    Malformed,
    #[error("clearance signed with an unknown or retired key")]
    UnknownKey,
    #[error("clearance forged, or for another site or client prefix")]
    BadMac,
    #[error("clearance expired")]
    Expired,
    #[error("clearance issued to another browser")]
    WrongAgent,
}

/// Derives the signing keys from a master secret, one key per epoch.
pub struct Keyring {
    master: hmac::Key,
    period_s: u64,
    /// The last derived keys (current and previous epoch), to skip a derivation per check.
    cache: std::sync::Mutex<[Option<(u64, hmac::Key)>; 2]>,
}

impl Clone for Keyring {
    fn clone(&self) -> Self {
        Keyring {
            master: self.master.clone(),
            period_s: self.period_s,
            cache: std::sync::Mutex::new([None, None]),
        }
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("period_s", &self.period_s)
            .finish()
    }
}

impl Keyring {
    /// `master`: the shared secret; `period_s`: how often keys rotate.
    pub fn new(master: &[u8], period_s: u64) -> Self {
        Keyring {
            master: hmac::Key::new(hmac::HMAC_SHA256, master),
            period_s: period_s.max(60),
            cache: std::sync::Mutex::new([None, None]),
        }
    }

    fn epoch(&self, now_s: u64) -> u64 {
        now_s / self.period_s
    }

    fn key(&self, epoch: u64) -> hmac::Key {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = (epoch % 2) as usize;
        if let Some((e, k)) = &cache[slot] {
            if *e == epoch {
                return k.clone();
            }
        }
        let k = self.derive(epoch);
        cache[slot] = Some((epoch, k.clone()));
        k
    }

    fn derive(&self, epoch: u64) -> hmac::Key {
        let mut input = *b"levee-key-epoch\0\0\0\0\0\0\0\0";
        input[15..].copy_from_slice(&epoch.to_be_bytes());
        let tag = hmac::sign(&self.master, &input);
        hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
    }

    /// The key for a token whose key id is `id`, if it is the current or previous epoch's.
    fn key_for(&self, id: u8, now_s: u64) -> Option<hmac::Key> {
        let e = self.epoch(now_s);
        [e, e.saturating_sub(1)]
            .into_iter()
            .find(|c| (*c % 256) as u8 == id)
            .map(|c| self.key(c))
    }
}

/// A fingerprint of a master secret that tells nothing about it (an HMAC
/// under the secret of a fixed label): edges of a fleet compare these to
/// find out whether they hold the same secret.
pub fn fingerprint(secret: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, b"levee fleet secret fingerprint v1");
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client prefix a token is bound to: /24 for IPv4, /64 for IPv6.
pub fn prefix_bytes(ip: IpAddr) -> ([u8; 9], usize) {
    let mut out = [0u8; 9];
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            out[0] = 4;
            out[1..4].copy_from_slice(&v4.octets()[..3]);
            (out, 4)
        }
        IpAddr::V6(v6) => {
            out[0] = 6;
            out[1..9].copy_from_slice(&v6.octets()[..8]);
            (out, 9)
        }
    }
}

fn mac(key: &hmac::Key, label: &[u8], site: &str, ip: IpAddr, body: &[u8]) -> [u8; MAC_LEN] {
    let (p, plen) = prefix_bytes(ip);
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(label);
    ctx.update(&(site.len() as u32).to_be_bytes());
    ctx.update(site.as_bytes());
    ctx.update(&p[..plen]);
    ctx.update(body);
    let tag = ctx.sign();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
    out
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Issue a challenge token (URL-safe base64, 58 characters).
pub fn issue(
    keys: &Keyring,
    site: &str,
    ip: IpAddr,
    now_s: u64,
    bits: u8,
    nonce: [u8; 16],
) -> String {
    let epoch = keys.epoch(now_s);
    let mut b = [0u8; CHALLENGE_LEN];
    b[0] = CHALLENGE_VERSION;
    b[1] = (epoch % 256) as u8;
    b[2..10].copy_from_slice(&now_s.to_be_bytes());
    b[10] = bits.min(MAX_BITS);
    b[11..27].copy_from_slice(&nonce);
    let m = mac(&keys.key(epoch), b"c1", site, ip, &b[..CHALLENGE_BODY]);
    b[CHALLENGE_BODY..].copy_from_slice(&m);
    b64_encode(&b)
}

/// The difficulty a token asks for, without verifying it (for the page).
pub fn bits_of(token: &str) -> Option<u8> {
    let mut b = [0u8; CHALLENGE_LEN];
    (b64_decode(token, &mut b) == Some(CHALLENGE_LEN)).then_some(b[10])
}

/// Leading zero bits of a digest.
pub fn leading_zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for &byte in d {
        if byte == 0 {
            n += 8;
        } else {
            return n + byte.leading_zeros();
        }
    }
    n
}

/// Whether `counter` is enough work for `token` at `bits`.
pub fn work_ok(token: &str, counter: u64, bits: u8) -> bool {
    let mut buf = [0u8; 96];
    let t = token.as_bytes();
    if t.len() > 64 {
        return false;
    }
    buf[..t.len()].copy_from_slice(t);
    buf[t.len()] = b':';
    let mut n = t.len() + 1;
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut c = counter;
    loop {
        i -= 1;
        digits[i] = b'0' + (c % 10) as u8;
        c /= 10;
        if c == 0 {
            break;
        }
    }
    buf[n..n + 20 - i].copy_from_slice(&digits[i..]);
    n += 20 - i;
    let d = digest::digest(&digest::SHA256, &buf[..n]);
    leading_zero_bits(d.as_ref()) >= u32::from(bits)
}

/// Solve a challenge (the drill's legitimate clients; tests). Bounded by `max_tries`.
pub fn solve(token: &str, max_tries: u64) -> Option<u64> {
    let bits = bits_of(token)?;
    (0..max_tries).find(|&c| work_ok(token, c, bits))
}

/// A verified solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solved {
    pub issued_s: u64,
    pub bits: u8,
    pub nonce: [u8; 16],
}

/// Verify a solution: cheap checks first (shape, age, work), then the MAC in
/// constant time, then the spent set. `ttl_s`: how long a challenge is valid.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    keys: &Keyring,
    spent: &mut SpentSet,
    token: &str,
    counter: u64,
    site: &str,
    ip: IpAddr,
    now_s: u64,
    ttl_s: u64,
) -> Result<Solved, ChallengeError> {
    let s = check(keys, token, counter, site, ip, now_s, ttl_s)?;
    if !spent.insert(s.nonce, s.issued_s, now_s, ttl_s) {
        return Err(ChallengeError::Replayed);
    }
    Ok(s)
}

/// Decode a challenge token: its bytes and issue time.
fn parse_challenge(token: &str) -> Result<([u8; CHALLENGE_LEN], u64), ChallengeError> {
    let mut b = [0u8; CHALLENGE_LEN];
    if b64_decode(token, &mut b) != Some(CHALLENGE_LEN)
        || b[0] != CHALLENGE_VERSION
        || b[10] > MAX_BITS
    {
        return Err(ChallengeError::Malformed);
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[2..10]);
    Ok((b, u64::from_be_bytes(t)))
}

/// The token was issued by a holder of the keys, for this site and prefix
/// (constant time); its nonce.
fn authenticate(
    keys: &Keyring,
    b: &[u8; CHALLENGE_LEN],
    site: &str,
    ip: IpAddr,
    now_s: u64,
) -> Result<[u8; 16], ChallengeError> {
    let key = keys
        .key_for(b[1], now_s)
        .ok_or(ChallengeError::UnknownKey)?;
    let m = mac(&key, b"c1", site, ip, &b[..CHALLENGE_BODY]);
    if !ct_eq(&m, &b[CHALLENGE_BODY..]) {
        return Err(ChallengeError::BadMac);
    }
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&b[11..27]);
    Ok(nonce)
}

/// Everything [`verify`] checks except replay.
pub fn check(
    keys: &Keyring,
    token: &str,
    counter: u64,
    site: &str,
    ip: IpAddr,
    now_s: u64,
    ttl_s: u64,
) -> Result<Solved, ChallengeError> {
    let (b, issued) = parse_challenge(token)?;
    if issued > now_s + 5 {
        return Err(ChallengeError::FromFuture);
    }
    if now_s.saturating_sub(issued) > ttl_s {
        return Err(ChallengeError::Expired);
    }
    // The work first: it is the cheapest way to refuse a bogus solution.
    if !work_ok(token, counter, b[10]) {
        return Err(ChallengeError::InsufficientWork);
    }
    let nonce = authenticate(keys, &b, site, ip, now_s)?;
    Ok(Solved {
        issued_s: issued,
        bits: b[10],
        nonce,
    })
}

/// The no-JavaScript fallback: a genuine token (MAC, site, prefix, expiry,
/// replay) fetched at least `waited_s` seconds ago; no work is checked.
#[allow(clippy::too_many_arguments)]
pub fn verify_waited(
    keys: &Keyring,
    spent: &mut SpentSet,
    token: &str,
    site: &str,
    ip: IpAddr,
    now_s: u64,
    ttl_s: u64,
    waited_s: u64,
) -> Result<Solved, ChallengeError> {
    let (b, issued) = parse_challenge(token)?;
    // The MAC first: `issued` is the client's until it is authenticated.
    let nonce = authenticate(keys, &b, site, ip, now_s)?;
    if issued.saturating_add(waited_s) > now_s {
        return Err(ChallengeError::InsufficientWork);
    }
    if now_s.saturating_sub(issued) > ttl_s {
        return Err(ChallengeError::Expired);
    }
    if !spent.insert(nonce, issued, now_s, ttl_s) {
        return Err(ChallengeError::Replayed);
    }
    Ok(Solved {
        issued_s: issued,
        bits: 0,
        nonce,
    })
}

/// The first 8 bytes of SHA-256 of a User-Agent.
pub fn agent_hash(user_agent: &[u8]) -> [u8; 8] {
    let d = digest::digest(&digest::SHA256, user_agent);
    let mut out = [0u8; 8];
    out.copy_from_slice(&d.as_ref()[..8]);
    out
}

/// Issue a clearance valid until `now_s + ttl_s` (URL-safe base64, 46 characters).
pub fn clearance(
    keys: &Keyring,
    site: &str,
    ip: IpAddr,
    user_agent: &[u8],
    now_s: u64,
    ttl_s: u64,
) -> String {
    let epoch = keys.epoch(now_s);
    let mut b = [0u8; CLEARANCE_LEN];
    b[0] = CLEARANCE_VERSION;
    b[1] = (epoch % 256) as u8;
    b[2..10].copy_from_slice(&(now_s + ttl_s).to_be_bytes());
    b[10..18].copy_from_slice(&agent_hash(user_agent));
    let m = mac(&keys.key(epoch), b"k2", site, ip, &b[..CLEARANCE_BODY]);
    b[CLEARANCE_BODY..].copy_from_slice(&m);
    b64_encode(&b)
}

/// Check a clearance presented in a cookie.
pub fn check_clearance(
    keys: &Keyring,
    token: &str,
    site: &str,
    ip: IpAddr,
    user_agent: &[u8],
    now_s: u64,
) -> Result<(), ClearanceError> {
    let mut b = [0u8; CLEARANCE_LEN];
    if b64_decode(token, &mut b) != Some(CLEARANCE_LEN) || b[0] != CLEARANCE_VERSION {
        return Err(ClearanceError::Malformed);
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[2..10]);
    if now_s > u64::from_be_bytes(t) {
        return Err(ClearanceError::Expired);
    }
    if !ct_eq(&b[10..18], &agent_hash(user_agent)) {
        return Err(ClearanceError::WrongAgent);
    }
    // Clearances outlive one key period: accept keys back to the previous epoch.
    let key = keys
        .key_for(b[1], now_s)
        .ok_or(ClearanceError::UnknownKey)?;
    let m = mac(&key, b"k2", site, ip, &b[..CLEARANCE_BODY]);
    if !ct_eq(&m, &b[CLEARANCE_BODY..]) {
        return Err(ClearanceError::BadMac);
    }
    Ok(())
}

/// Nonces of used solutions, bounded: entries older than the challenge TTL
/// are dropped first; when still full, the oldest is dropped (and counted).
#[derive(Debug)]
pub struct SpentSet {
    cap: usize,
    set: HashSet<[u8; 16]>,
    order: VecDeque<([u8; 16], u64)>,
    /// Entries dropped before their challenge expired (replay became possible for them).
    pub forced_evictions: u64,
}

impl SpentSet {
    pub fn new(cap: usize) -> Self {
        SpentSet {
            cap: cap.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
            forced_evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Record a nonce; `false` if it was already there (a replay).
    pub fn insert(&mut self, nonce: [u8; 16], issued_s: u64, now_s: u64, ttl_s: u64) -> bool {
        while let Some((n, t)) = self.order.front().copied() {
            if now_s.saturating_sub(t) > ttl_s + 5 {
                self.order.pop_front();
                self.set.remove(&n);
            } else {
                break;
            }
        }
        if self.set.contains(&nonce) {
            return false;
        }
        if self.set.len() >= self.cap {
            if let Some((n, _)) = self.order.pop_front() {
                self.set.remove(&n);
                self.forced_evictions += 1;
            }
        }
        self.set.insert(nonce);
        self.order.push_back((nonce, issued_s));
        true
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 3);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decode URL-safe base64 without padding into `out`; the number of bytes, or
/// `None` for bad characters or too much data.
pub fn b64_decode(s: &str, out: &mut [u8]) -> Option<usize> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut n = 0usize;
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            if n >= out.len() {
                return None;
            }
            out[n] = (acc >> (16 - 8 * i)) as u8;
            n += 1;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "www";
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn keys() -> Keyring {
        Keyring::new(b"master secret for tests", 3600)
    }

    #[test]
    fn base64_round_trip() {
        for len in 0..50 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let e = b64_encode(&data);
            let mut out = vec![0u8; 64];
            assert_eq!(b64_decode(&e, &mut out), Some(len));
            assert_eq!(&out[..len], &data[..]);
        }
        assert_eq!(b64_decode("a", &mut [0u8; 4]), None);
        assert_eq!(b64_decode("a+b/", &mut [0u8; 4]), None);
    }

    #[test]
    fn solved_challenge_verifies_once() {
        let k = keys();
        let now = 1_800_000_000;
        let t = issue(&k, SITE, ip("192.0.2.10"), now, 8, [7; 16]);
        assert_eq!(t.len(), 58);
        let c = solve(&t, 1 << 20).unwrap();
        let mut spent = SpentSet::new(100);
        // Same /24, another address: accepted.
        let s = verify(&k, &mut spent, &t, c, SITE, ip("192.0.2.99"), now + 3, 300).unwrap();
        assert_eq!(s.bits, 8);
        assert_eq!(
            verify(&k, &mut spent, &t, c, SITE, ip("192.0.2.10"), now + 4, 300),
            Err(ChallengeError::Replayed)
        );
    }

    #[test]
    fn forged_expired_wrong_prefix_site_and_key_are_rejected() {
        let k = keys();
        let now = 1_800_000_000;
        let t = issue(&k, SITE, ip("192.0.2.10"), now, 8, [1; 16]);
        let c = solve(&t, 1 << 20).unwrap();
        let chk = |k: &Keyring, t: &str, c: u64, site: &str, addr: &str, at: u64| {
            check(k, t, c, site, ip(addr), at, 300)
        };
        assert!(chk(&k, &t, c, SITE, "192.0.2.10", now).is_ok());
        assert_eq!(
            chk(&k, &t, c, SITE, "192.0.3.10", now),
            Err(ChallengeError::BadMac),
            "wrong prefix"
        );
        assert_eq!(
            chk(&k, &t, c, "other", "192.0.2.10", now),
            Err(ChallengeError::BadMac),
            "wrong site"
        );
        assert_eq!(
            chk(&k, &t, c, SITE, "192.0.2.10", now + 301),
            Err(ChallengeError::Expired)
        );
        assert_eq!(
            chk(&k, &t, c, SITE, "192.0.2.10", now - 60),
            Err(ChallengeError::FromFuture)
        );
        let other = Keyring::new(b"another master", 3600);
        assert_eq!(
            chk(&other, &t, c, SITE, "192.0.2.10", now),
            Err(ChallengeError::BadMac),
            "wrong key"
        );
        // Two epochs later the key is retired.
        assert_eq!(
            chk(&k, &t, c, SITE, "192.0.2.10", now + 7200),
            Err(ChallengeError::Expired)
        );
        let old = check(&k, &t, c, SITE, ip("192.0.2.10"), now + 7300, 10_000);
        assert_eq!(old, Err(ChallengeError::UnknownKey));
        // Forged: flip a bit of the MAC; raise the difficulty byte; garbage.
        let mut b = [0u8; CHALLENGE_LEN];
        b64_decode(&t, &mut b).unwrap();
        b[CHALLENGE_LEN - 1] ^= 1;
        let forged = b64_encode(&b);
        let fc = solve(&forged, 1 << 20).unwrap();
        assert_eq!(
            chk(&k, &forged, fc, SITE, "192.0.2.10", now),
            Err(ChallengeError::BadMac)
        );
        b64_decode(&t, &mut b).unwrap();
        b[10] = 0; // ask for no work
        let easy = b64_encode(&b);
        assert_eq!(
            chk(&k, &easy, 0, SITE, "192.0.2.10", now),
            Err(ChallengeError::BadMac)
        );
        assert_eq!(
            chk(&k, "garbage", 0, SITE, "192.0.2.10", now),
            Err(ChallengeError::Malformed)
        );
        // Not enough work.
        let bad = (0..).find(|&x| !work_ok(&t, x, 8)).unwrap();
        assert_eq!(
            chk(&k, &t, bad, SITE, "192.0.2.10", now),
            Err(ChallengeError::InsufficientWork)
        );
    }

    #[test]
    fn clearance_is_bound_to_site_prefix_agent_and_time() {
        let k = keys();
        let now = 1_800_000_000;
        let ua = b"Mozilla/5.0 test";
        let c = clearance(&k, SITE, ip("2001:db8:1:2::5"), ua, now, 3600);
        assert_eq!(c.len(), 46);
        assert!(check_clearance(&k, &c, SITE, ip("2001:db8:1:2::99"), ua, now + 10).is_ok());
        assert_eq!(
            check_clearance(&k, &c, SITE, ip("2001:db8:1:3::5"), ua, now),
            Err(ClearanceError::BadMac)
        );
        assert_eq!(
            check_clearance(&k, &c, "other", ip("2001:db8:1:2::5"), ua, now),
            Err(ClearanceError::BadMac)
        );
        assert_eq!(
            check_clearance(&k, &c, SITE, ip("2001:db8:1:2::5"), b"curl/8", now),
            Err(ClearanceError::WrongAgent)
        );
        assert_eq!(
            check_clearance(&k, &c, SITE, ip("2001:db8:1:2::5"), ua, now + 3601),
            Err(ClearanceError::Expired)
        );
        let other = Keyring::new(b"rotated master", 3600);
        assert_eq!(
            check_clearance(&other, &c, SITE, ip("2001:db8:1:2::5"), ua, now),
            Err(ClearanceError::BadMac)
        );
        assert_eq!(
            check_clearance(&k, "", SITE, ip("2001:db8:1:2::5"), ua, now),
            Err(ClearanceError::Malformed)
        );
        // A challenge token is not a clearance.
        let t = issue(&k, SITE, ip("2001:db8:1:2::5"), now, 8, [2; 16]);
        assert_eq!(
            check_clearance(&k, &t, SITE, ip("2001:db8:1:2::5"), ua, now),
            Err(ClearanceError::Malformed)
        );
    }

    #[test]
    fn edges_sharing_the_master_agree_across_a_rotation() {
        let a = Keyring::new(b"shared", 3600);
        let b = Keyring::new(b"shared", 3600);
        let now = 1_800_003_590; // 10 s before an epoch boundary
        let t = issue(&a, SITE, ip("10.1.2.3"), now, 4, [9; 16]);
        let c = solve(&t, 1 << 16).unwrap();
        assert!(check(&b, &t, c, SITE, ip("10.1.2.4"), now + 20, 300).is_ok());
    }

    #[test]
    fn spent_set_is_bounded() {
        let mut s = SpentSet::new(3);
        for i in 0..10u8 {
            assert!(s.insert([i; 16], 100, 100, 300));
            assert!(s.len() <= 3);
        }
        assert_eq!(s.forced_evictions, 7);
        assert!(!s.insert([9; 16], 100, 100, 300));
        // Expired entries go first, without forced eviction.
        let mut s = SpentSet::new(2);
        s.insert([1; 16], 0, 0, 10);
        s.insert([2; 16], 0, 0, 10);
        assert!(s.insert([3; 16], 100, 100, 10));
        assert_eq!(s.forced_evictions, 0);
    }

    #[test]
    fn waiting_replaces_work_only_after_the_wait() {
        let k = keys();
        let now = 1_800_000_000;
        let t = issue(&k, SITE, ip("192.0.2.1"), now, 16, [5; 16]);
        let mut spent = SpentSet::new(10);
        assert_eq!(
            verify_waited(&k, &mut spent, &t, SITE, ip("192.0.2.1"), now + 2, 300, 5),
            Err(ChallengeError::InsufficientWork)
        );
        assert!(verify_waited(&k, &mut spent, &t, SITE, ip("192.0.2.1"), now + 6, 300, 5).is_ok());
        assert_eq!(
            verify_waited(&k, &mut spent, &t, SITE, ip("192.0.2.1"), now + 7, 300, 5),
            Err(ChallengeError::Replayed)
        );
        assert_eq!(
            verify_waited(
                &k,
                &mut spent,
                &t,
                SITE,
                ip("198.51.100.1"),
                now + 7,
                300,
                5
            ),
            Err(ChallengeError::BadMac)
        );
    }

    #[test]
    fn a_forged_issue_time_is_refused_without_overflow() {
        // Review finding 17: `issued = u64::MAX` once overflowed before the MAC check.
        let k = keys();
        let now = 1_800_000_000;
        let t = issue(&k, SITE, ip("192.0.2.1"), now, 16, [5; 16]);
        let mut b = [0u8; CHALLENGE_LEN];
        assert_eq!(b64_decode(&t, &mut b), Some(CHALLENGE_LEN));
        b[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
        let forged = b64_encode(&b);
        let mut spent = SpentSet::new(10);
        let r = verify_waited(
            &k,
            &mut spent,
            &forged,
            SITE,
            ip("192.0.2.1"),
            now,
            300,
            u64::MAX,
        );
        assert_eq!(r, Err(ChallengeError::BadMac));
    }

    #[test]
    fn zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
