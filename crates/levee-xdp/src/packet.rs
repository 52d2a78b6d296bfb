//! Build test packets (Ethernet + IPv4/IPv6 + TCP/UDP) for `BPF_PROG_TEST_RUN`.
/// The Internet checksum of `b` (0 when `b` already holds a valid one).
pub fn csum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(proto: u16) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    p.extend_from_slice(&proto.to_be_bytes());
    p
}

/// IPv4 with `l4` as payload; `frag` is the flags+offset field.
pub fn ipv4(src: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut p = eth(0x0800);
    let tot = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&[0, 1]);
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&[10, 0, 0, 1]);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(l4);
    p
}

pub fn ipv6(src: [u8; 16], next: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = eth(0x86dd);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src);
    let mut dst = [0u8; 16];
    dst[15] = 1;
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

pub fn tcp(flags: u8) -> Vec<u8> {
    let mut t = vec![
        0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0,
    ];
    t.truncate(20);
    t
}

pub fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&12u16.to_be_bytes());
    u.extend_from_slice(&[0, 0, 1, 2, 3, 4]);
    u
}

/// A TCP header from port 12345 to `dport` with `flags`, `seq`, `ack` and
/// raw `options` (padded to a multiple of 4).
pub fn tcp_full(dport: u16, flags: u8, seq: u32, ack: u32, options: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&12345u16.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    let mut opts = options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(1);
    }
    t.push((((20 + opts.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(&opts);
    t
}

/// Linux's SYN options: MSS 1460, SACK permitted, timestamps, window scale 7.
pub const LINUX_SYN_OPTIONS: [u8; 20] = [
    2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 3, 3, 7,
];
