//! Packets dropped per second on one core: Levee's XDP filter (/32 hit,
//! prefix hit among 20,000 blocked prefixes, rate limit) against an
//! nftables `netdev ingress` drop rule, an empty XDP drop program, and no
//! filter at all. Frames are injected with `BPF_PROG_TEST_RUN` live frames
//! as if received on `--iface` (one end of a veth pair in a namespace that
//! `scripts/bench-xdp.sh` creates; run through that script, as root).
//!
//! Not a test: it prints a table of medians and ratios.

use aya::programs::Xdp;
use aya::EbpfLoader;
use levee_xdp::packet::csum;
use levee_xdp::{run_live, Config, Filter};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

struct Args {
    iface: String,
    dst: Ipv4Addr,
    frames: u32,
    rounds: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        iface: String::new(),
        dst: Ipv4Addr::new(10, 78, 0, 1),
        frames: 5_000_000,
        rounds: 5,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--iface" => a.iface = val,
            "--dst" => a.dst = val.parse().map_err(|e| format!("--dst: {e}"))?,
            "--frames" => a.frames = val.parse().map_err(|e| format!("--frames: {e}"))?,
            "--rounds" => a.rounds = val.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--bench" => {
                i += 1;
                continue;
            }
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    if a.iface.is_empty() {
        return Err("give --iface (run scripts/bench-xdp.sh)".into());
    }
    Ok(a)
}

fn sys(iface: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/{what}"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{iface}: {e}"))
}

/// A 64-byte Ethernet frame: UDP from `src` to `dst`:9 (discard).
fn frame(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = dst_mac.to_vec();
    p.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99, 0x08, 0x00]);
    let payload = [0u8; 18];
    let tot = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&payload);
    p
}

fn nft(args: &[&str]) -> Result<(), String> {
    let out = Command::new("nft")
        .args(args)
        .output()
        .map_err(|e| format!("nft: {e} (apt-get install nftables)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn mpps(frames: u32, d: Duration) -> f64 {
    f64::from(frames) / d.as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("bench-xdp: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Result<(), String> {
    let a = args()?;
    let ifindex: u32 = sys(&a.iface, "ifindex")?
        .parse()
        .map_err(|e| format!("ifindex: {e}"))?;
    let mac: Vec<u8> = sys(&a.iface, "address")?
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    let mac: [u8; 6] = mac.try_into().map_err(|_| "bad MAC address")?;
    let e = |e: levee_xdp::XdpError| e.to_string();

    // Levee's filter: one exact block, 20,000 blocked prefixes.
    let blocked = Ipv4Addr::new(198, 51, 100, 7);
    let mut lists = Filter::load(Config::default()).map_err(e)?;
    lists.block(blocked.into(), 32, 0).map_err(e)?;
    let mut last = Ipv4Addr::UNSPECIFIED;
    let mut prefixes = Vec::with_capacity(20_000);
    for i in 0..20_000u32 {
        // /24s spread over 100.64.0.0/10 and 172.16.0.0/12.
        let base = if i < 16_384 {
            0x6440_0000 + (i << 8)
        } else {
            0xac10_0000 + ((i - 16_384) << 8)
        };
        last = Ipv4Addr::from(base);
        lists.block(last.into(), 24, 0).map_err(e)?;
        prefixes.push(format!("{last}/24"));
    }
    let in_prefix = Ipv4Addr::from(u32::from(last) | 0x2a);
    // Rate limit: 10 packets per minute, then dropped.
    let limited = Filter::load(Config {
        pkt_budget: 10,
        window_ms: 60_000,
        ..Config::default()
    })
    .map_err(e)?;
    let rate_src = Ipv4Addr::new(192, 0, 2, 55);

    let mut refs = EbpfLoader::new()
        .load(levee_xdp::BENCH_PROGRAMS)
        .map_err(|e| format!("bench programs: {e}"))?;
    for name in ["empty_drop", "empty_pass"] {
        let p: &mut Xdp = refs
            .program_mut(name)
            .ok_or(format!("no {name}"))?
            .try_into()
            .map_err(|e| format!("{name}: {e}"))?;
        p.load().map_err(|e| format!("{name}: {e}"))?;
    }
    let prog = |name: &str| -> Result<&Xdp, String> {
        refs.program(name)
            .ok_or(format!("no {name}"))?
            .try_into()
            .map_err(|e| format!("{name}: {e}"))
    };
    let empty_drop = prog("empty_drop")?;
    let empty_pass = prog("empty_pass")?;

    let f_blocked = frame(mac, blocked, a.dst);
    let f_prefix = frame(mac, in_prefix, a.dst);
    let f_rate = frame(mac, rate_src, a.dst);
    // nftables on the same device: one rule dropping the /32 source, and a
    // rule matching a set of the same 20,000 prefixes.
    let table = "levee_bench";
    let _ = nft(&["delete", "table", "netdev", table]);
    let ruleset = |m: &str, extra: &str| {
        format!(
            "table netdev {table} {{\n{extra}\nchain in {{ type filter hook ingress device \"{}\" priority 0; {m} drop; }}\n}}\n",
            a.iface
        )
    };
    let nft_one = ruleset(&format!("ip saddr {blocked}"), "");
    let nft_set = ruleset(
        "ip saddr @blk",
        &format!(
            "set blk {{ type ipv4_addr; flags interval; elements = {{ {} }} }}",
            prefixes.join(", ")
        ),
    );
    let rules = std::env::temp_dir().join(format!("levee-bench-{}.nft", std::process::id()));
    type Case<'a> = (&'a str, &'a Xdp, &'a [u8], Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "levee /32 hit",
            lists.program().map_err(e)?,
            &f_blocked,
            None,
        ),
        (
            "levee prefix hit (20k prefixes)",
            lists.program().map_err(e)?,
            &f_prefix,
            None,
        ),
        (
            "levee rate limit",
            limited.program().map_err(e)?,
            &f_rate,
            None,
        ),
        (
            "nftables ingress, /32 rule",
            empty_pass,
            &f_blocked,
            Some(&nft_one),
        ),
        (
            "nftables ingress, 20k-prefix set",
            empty_pass,
            &f_prefix,
            Some(&nft_set),
        ),
        ("empty XDP drop", empty_drop, &f_blocked, None),
        ("no filter (kernel stack)", empty_pass, &f_blocked, None),
    ];
    // Warm up (and use up the rate-limited source's budget).
    run_live(limited.program().map_err(e)?, &f_rate, 1000, ifindex).map_err(e)?;
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..a.rounds {
        for (i, (name, p, pkt, with_nft)) in cases.iter().enumerate() {
            if let Some(r) = with_nft {
                std::fs::write(&rules, r).map_err(|e| format!("{}: {e}", rules.display()))?;
                nft(&["-f", &rules.to_string_lossy()])?;
            }
            let d = run_live(p, pkt, a.frames, ifindex).map_err(e);
            if with_nft.is_some() {
                nft(&["delete", "table", "netdev", table])?;
            }
            let r = mpps(a.frames, d?);
            eprintln!("round {}: {name}: {r:.2} Mpps", round + 1);
            results[i].push(r);
        }
    }
    let _ = std::fs::remove_file(&rules);
    let med: Vec<f64> = results.into_iter().map(median).collect();
    let (nft_m, empty_m) = (med[3], med[5]);
    println!(
        "\n{} frames x {} rounds, one core, 64-byte UDP frames on {} (median Mpps)\n",
        a.frames, a.rounds, a.iface
    );
    println!(
        "{:<34} {:>8} {:>12} {:>14}",
        "filter", "Mpps", "vs nft /32", "vs empty XDP"
    );
    for ((name, ..), m) in cases.iter().zip(&med) {
        println!(
            "{name:<34} {m:>8.2} {:>11.2}x {:>13.0}%",
            m / nft_m,
            m / empty_m * 100.0
        );
    }
    let st = lists.stats().map_err(e)?;
    let dropped: u64 = st
        .iter()
        .filter(|(r, _)| r.label().starts_with("blocked"))
        .map(|(_, n)| n)
        .sum();
    println!("\n(levee's counters: {dropped} packets dropped by the block lists)");
    Ok(())
}
