#![no_main]
//! The XDP program on arbitrary frames (BPF_PROG_TEST_RUN, root only): every
//! frame gets DROP, PASS or TX, and is counted under exactly one reason.
//! libFuzzer cannot see coverage inside the kernel, so inputs are edits of
//! valid frames (IPv4/IPv6, TCP SYN with options, ACK, UDP, fragments):
//! byte 0 picks the frame, byte 1 its length, then (offset, value) pairs.
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

static FILTER: OnceLock<Mutex<levee_xdp::Filter>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    use levee_xdp::packet::*;
    let seeds = [
        ipv4([192, 0, 2, 1], 6, 0, &tcp_full(80, 0x02, 7, 0, &LINUX_SYN_OPTIONS)),
        ipv4([192, 0, 2, 1], 6, 0, &tcp_full(80, 0x10, 7, 9, &[])),
        ipv4([203, 0, 113, 5], 17, 0, &udp(53, 999)),
        ipv4([192, 0, 2, 1], 17, 0x2000, &udp(1, 2)),
        ipv6([0x20; 16], 6, &tcp(0x02)),
        ipv6([0x20; 16], 44, &[17, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 2]),
    ];
    let (Some(&pick), Some(&len)) = (data.first(), data.get(1)) else {
        return;
    };
    let mut frame = seeds[pick as usize % seeds.len()].clone();
    frame.resize(14 + len as usize % (frame.len() + 40 - 13), 0);
    for e in data[2..].chunks_exact(2) {
        let at = e[0] as usize % frame.len();
        frame[at] = e[1];
    }
    let data = &frame[..];
    let f = FILTER.get_or_init(|| {
        let mut f = levee_xdp::Filter::load(levee_xdp::Config {
            synproxy: true,
            syn_budget: 1_000_000,
            pkt_budget: 1_000_000,
            ..levee_xdp::Config::default()
        })
        .expect("load the XDP filter (run as root)");
        f.set_synproxy_port(80, true).expect("synproxy port");
        f.block("203.0.113.0".parse().expect("ip"), 24, 0).expect("block");
        Mutex::new(f)
    });
    let f = f.lock().expect("lock");
    let before: u64 = f.stats().expect("stats").iter().map(|(_, n)| n).sum();
    let v = f.test_packet(data).expect("test run");
    assert!(matches!(v, levee_xdp::XDP_DROP | levee_xdp::XDP_PASS | levee_xdp::XDP_TX), "verdict {v}");
    let after: u64 = f.stats().expect("stats").iter().map(|(_, n)| n).sum();
    assert_eq!(after, before + 1, "counted once");
});
