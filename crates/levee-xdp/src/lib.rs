//! The XDP packet filter's controller: loads Levee's XDP program (C, built by
//! `build.rs` with clang), configures it, edits its allow and block lists
//! (with expiry) and reads its per-reason counters. It drops floods before
//! they reach the kernel's network stack.
//!
//! Persistent use (`levee xdp`): the maps and the XDP link are pinned in a
//! bpffs directory (default `/sys/fs/bpf/levee`), so protection stays while
//! no controller runs; every later command reopens the pinned maps;
//! `detach` removes the link and the pins.
//!
//! Modules: `config` (reasons, settings, their byte layout), `pin`
//! (bpffs, attach/detach, `attach_or_reuse` for the edge), `lists` (the
//! block and allow maps), `mirror` (copying a wanted set, such as the edge's
//! blocks, into them), `host` (privileges, interfaces, SYN-cookie sysctls,
//! the SYN proxy's nftables rules), `packet` (test frames).
//!
//! What it does not do: decide what to block (the edge or an operator
//! does), or change the host's firewall (`host::synproxy_rules` prints the
//! rules; the operator loads them).

use aya::maps::{Array, PerCpuArray};
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use std::path::{Path, PathBuf};

/// Every map of the program (pinned by these names).
pub const MAPS: [&str; 13] = [
    "CONFIG",
    "STATS",
    "ALLOW_V4",
    "ALLOW_V6",
    "BLOCK_V4",
    "BLOCK_V6",
    "BLOCK_NET_V4",
    "BLOCK_NET_V6",
    "REFLECT_PORTS",
    "SERVICE_PORTS",
    "RATE",
    "RATE_V4",
    "SYNPROXY_PORTS",
];

/// Where pins live unless told otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/levee";

/// The compiled program (empty when clang was missing at build time).
pub static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/levee_xdp.o"));

/// Why the filter could not be used.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("the XDP program was not built: install clang, llvm and libbpf-dev and rebuild")]
    NotBuilt,
    #[error("cannot load the XDP program (root or CAP_BPF is needed; the kernel said: {0})")]
    Load(String),
    #[error("the kernel's verifier refused the XDP program ({error}); the end of its log:\n{tail}\n(full log: {full})")]
    Verifier {
        error: String,
        tail: String,
        full: String,
    },
    #[error("map {0}: {1}")]
    Map(&'static str, String),
    #[error("program: {0}")]
    Program(#[from] ProgramError),
    #[error("{0}")]
    Pin(String),
    #[error("not attached: no pinned link at {0} (run `levee xdp attach --iface IF` first)")]
    NotAttached(String),
}

/// The benchmark's reference programs `empty_drop` and `empty_pass`.
pub static BENCH_PROGRAMS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench.o"));

/// Run an XDP program on `repeat` copies of `packet` as live frames
/// (`BPF_F_TEST_XDP_LIVE_FRAMES`): received on interface `ifindex` of this
/// network namespace, passed frames go up its stack as if from the wire.
/// The wall time the kernel took.
pub fn run_live(
    prog: &Xdp,
    packet: &[u8],
    repeat: u32,
    ifindex: u32,
) -> Result<std::time::Duration, XdpError> {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(packet.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    let t = std::time::Instant::now();
    prog.test_run(TestRunOptions {
        data_in: Some(packet),
        ctx_in: Some(&ctx),
        repeat,
        attrs: aya::programs::TestRunAttrs::new().xdp_live_frames(64),
        ..TestRunOptions::default()
    })?;
    Ok(t.elapsed())
}

/// A loaded (not necessarily attached) filter.
pub struct Filter {
    ebpf: Ebpf,
    config: Config,
    /// Blocked prefix lengths in use (IPv4, IPv6), as the program probes them.
    lens4: Vec<u8>,
    lens6: Vec<u8>,
    allows: u32,
    /// The interface the pinned link is attached to (0: not known).
    ifindex: u32,
    pin_dir: Option<PathBuf>,
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> XdpError {
    move |e| XdpError::Map(name, e.to_string())
}

impl Filter {
    /// Load the program into the kernel (needs root or CAP_BPF).
    pub fn load(config: Config) -> Result<Filter, XdpError> {
        Self::load_with(config, None, true)
    }

    /// Load with the maps pinned in `dir` (reused when they are already
    /// there). `config: None` keeps the pinned configuration.
    pub fn open_pinned(config: Option<Config>, dir: &Path) -> Result<Filter, XdpError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            XdpError::Pin(format!(
                "cannot create {}: {e} (is bpffs mounted? mount -t bpf bpf /sys/fs/bpf)",
                dir.display()
            ))
        })?;
        let keep = config.is_none() && dir.join("CONFIG").exists();
        let mut f = Self::load_with(config.unwrap_or_default(), Some(dir), !keep)?;
        f.pin_dir = Some(dir.to_path_buf());
        if keep {
            if let Some((c, ifindex)) = f.read_config()? {
                f.config = c;
                f.ifindex = ifindex;
            }
        }
        f.recount_nets()?;
        Ok(f)
    }

    /// The pinned configuration and the interface it was attached to.
    fn read_config(&self) -> Result<Option<(Config, u32)>, XdpError> {
        let m: Array<_, [u8; CONFIG_SIZE]> = Array::try_from(
            self.ebpf
                .map("CONFIG")
                .ok_or(XdpError::Map("CONFIG", "missing".into()))?,
        )
        .map_err(map_err("CONFIG"))?;
        let b = m.get(&0, 0).map_err(map_err("CONFIG"))?;
        let u = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let w = u64::from_ne_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]);
        if w == 0 {
            return Ok(None);
        }
        let c = Config {
            drop_fragments: u(0) != 0,
            syn_budget: u(8),
            pkt_budget: u(12),
            window_ms: w / 1_000_000,
            synproxy: u(96) != 0,
            synproxy_mss: u16::from_ne_bytes([b[100], b[101]]),
            synproxy_wscale: b[102],
        };
        Ok(Some((c, u(104))))
    }

    /// Find the blocked prefix lengths and count allow entries (the program
    /// probes only the lengths in use and skips empty allow tries).
    fn recount_nets(&mut self) -> Result<(), XdpError> {
        let mut lens4: Vec<u8> = Vec::new();
        for k in self
            .hash::<[u8; 8], [u8; 16]>("BLOCK_NET_V4")?
            .keys()
            .flatten()
        {
            lists::push_len(
                &mut lens4,
                u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) as u8,
            );
        }
        let mut lens6: Vec<u8> = Vec::new();
        for k in self
            .hash::<[u8; 20], [u8; 16]>("BLOCK_NET_V6")?
            .keys()
            .flatten()
        {
            lists::push_len(
                &mut lens6,
                u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) as u8,
            );
        }
        self.lens4 = lens4;
        self.lens6 = lens6;
        let a4 = self.trie::<[u8; 4], u8>("ALLOW_V4")?.keys().count();
        let a6 = self.trie::<[u8; 16], u8>("ALLOW_V6")?.keys().count();
        self.allows = (a4 + a6) as u32;
        self.write_config()
    }

    pub fn config(&self) -> Config {
        self.config
    }

    fn load_with(config: Config, dir: Option<&Path>, write: bool) -> Result<Filter, XdpError> {
        if PROGRAM.is_empty() {
            return Err(XdpError::NotBuilt);
        }
        let mut loader = EbpfLoader::new();
        let paths: Vec<(&str, PathBuf)> = dir
            .map(|d| MAPS.iter().map(|m| (*m, d.join(m))).collect())
            .unwrap_or_default();
        for (m, p) in &paths {
            loader.map_pin_path(m, p.as_path());
        }
        let mut ebpf = loader.load(PROGRAM).map_err(|e| {
            let hint = if dir.is_some() {
                " (pins need bpffs: mount -t bpf bpf /sys/fs/bpf)"
            } else {
                ""
            };
            XdpError::Load(format!("{e}{hint}"))
        })?;
        let prog: &mut Xdp = ebpf
            .program_mut("levee_xdp")
            .ok_or_else(|| XdpError::Load("no program levee_xdp in the object".into()))?
            .try_into()?;
        prog.load().map_err(refused)?;
        let mut f = Filter {
            ebpf,
            config,
            lens4: Vec::new(),
            lens6: Vec::new(),
            allows: 0,
            ifindex: 0,
            pin_dir: None,
        };
        if write {
            f.set_config(config)?;
            for p in REFLECTION_PORTS {
                f.set_reflection_port(p, true)?;
            }
        }
        Ok(f)
    }

    fn write_config(&mut self) -> Result<(), XdpError> {
        let bytes = config_bytes(
            &self.config,
            &self.lens4,
            &self.lens6,
            self.allows,
            self.ifindex,
        );
        let mut m: Array<_, [u8; CONFIG_SIZE]> = Array::try_from(
            self.ebpf
                .map_mut("CONFIG")
                .ok_or(XdpError::Map("CONFIG", "missing".into()))?,
        )
        .map_err(map_err("CONFIG"))?;
        m.set(0, bytes, 0).map_err(map_err("CONFIG"))
    }

    pub fn set_config(&mut self, c: Config) -> Result<(), XdpError> {
        self.config = c;
        self.write_config()
    }

    /// Set or clear one port in a port bitmap map.
    fn set_port_bit(&mut self, map: &'static str, port: u16, on: bool) -> Result<(), XdpError> {
        let m = self
            .ebpf
            .map_mut(map)
            .ok_or(XdpError::Map(map, "missing".into()))?;
        let mut a: Array<_, u64> = Array::try_from(m).map_err(map_err(map))?;
        let w = u32::from(port >> 6);
        let bit = 1u64 << (port & 63);
        let old = a.get(&w, 0).map_err(map_err(map))?;
        let new = if on { old | bit } else { old & !bit };
        a.set(w, new, 0).map_err(map_err(map))
    }

    /// Treat UDP from `port` as reflection (dropped unless towards a service port).
    pub fn set_reflection_port(&mut self, port: u16, on: bool) -> Result<(), XdpError> {
        self.set_port_bit("REFLECT_PORTS", port, on)
    }

    /// A TCP port whose handshakes the XDP SYN proxy answers (with
    /// `Config::synproxy`; the host needs the nftables SYNPROXY rules of
    /// `host::synproxy_rules`).
    pub fn set_synproxy_port(&mut self, port: u16, on: bool) -> Result<(), XdpError> {
        self.set_port_bit("SYNPROXY_PORTS", port, on)
    }

    /// Service ports and SYN-proxy ports, as `attach` and the edge set them.
    pub fn set_ports(&mut self, service: &[u16], synproxy: &[u16]) -> Result<(), XdpError> {
        for p in service {
            self.set_service_port(*p)?;
        }
        for p in synproxy {
            self.set_synproxy_port(*p, true)?;
        }
        Ok(())
    }

    /// A UDP port this host serves (reflection ports towards it pass).
    pub fn set_service_port(&mut self, port: u16) -> Result<(), XdpError> {
        self.set_port_bit("SERVICE_PORTS", port, true)
    }

    /// Packets per reason, summed over CPUs.
    pub fn stats(&self) -> Result<Vec<(Reason, u64)>, XdpError> {
        let m: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("STATS")
                .ok_or(XdpError::Map("STATS", "missing".into()))?,
        )
        .map_err(map_err("STATS"))?;
        Reason::ALL
            .iter()
            .map(|r| {
                let v = m.get(&(*r as u32), 0).map_err(map_err("STATS"))?;
                Ok((*r, v.iter().sum()))
            })
            .collect()
    }

    /// The loaded program (for `run_live`).
    pub fn program(&self) -> Result<&Xdp, XdpError> {
        Ok(self
            .ebpf
            .program("levee_xdp")
            .ok_or_else(|| XdpError::Load("no program levee_xdp".into()))?
            .try_into()?)
    }

    /// Run the program on one packet; the verdict and the packet as the
    /// program left it (for XDP_TX answers).
    pub fn test_packet_out(&self, packet: &[u8]) -> Result<(u32, Vec<u8>), XdpError> {
        let mut out = vec![0u8; 512];
        let r = self.program()?.test_run(TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out))
    }

    /// Run the program on one packet (BPF_PROG_TEST_RUN); the XDP verdict.
    pub fn test_packet(&self, packet: &[u8]) -> Result<u32, XdpError> {
        let prog: &Xdp = self
            .ebpf
            .program("levee_xdp")
            .ok_or_else(|| XdpError::Load("no program levee_xdp".into()))?
            .try_into()?;
        let r = prog.test_run(TestRunOptions {
            data_in: Some(packet),
            ..TestRunOptions::default()
        })?;
        Ok(r.return_value)
    }
}

mod config;
pub mod host;
pub mod lists;
pub mod mirror;
pub mod packet;
mod pin;

pub use config::*;
pub use pin::{attach_or_reuse, ensure_bpffs, Attached};

pub use lists::{Block, Net, OWNER_BIT};
pub use mirror::{Applied, Mirror, Wanted};

/// The kernel's monotonic clock in ns (what `bpf_ktime_get_ns` reads), from
/// /proc/uptime (10 ms resolution; equal to it unless the machine suspends).
pub fn monotonic_ns() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map_or(0, |s| (s * 1e9) as u64)
}

/// A refused `BPF_PROG_LOAD`: not allowed, or the verifier's verdict with
/// the end of its log (the whole log is saved to a file: it can be long).
fn refused(e: ProgramError) -> XdpError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            if log.trim().is_empty()
                || io_error.kind() == std::io::ErrorKind::PermissionDenied
                    && !log.contains("processed")
            {
                return XdpError::Load(io_error.to_string());
            }
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(12)..].join("\n");
            let path =
                std::env::temp_dir().join(format!("levee-xdp-verifier-{}.log", std::process::id()));
            let full = match std::fs::write(&path, &log) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("not saved: {e}"),
            };
            XdpError::Verifier {
                error: io_error.to_string(),
                tail,
                full,
            }
        }
        other => XdpError::Program(other),
    }
}

#[cfg(test)]
mod tests {
    use super::packet::*;
    use super::*;

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;

    /// The filter, or `None` (with a message) where BPF cannot be loaded.
    fn filter(c: Config) -> Option<Filter> {
        match Filter::load(c) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("skipped: {e}");
                None
            }
        }
    }

    #[test]
    fn verdicts_on_crafted_packets() {
        let Some(mut f) = filter(Config::default()) else {
            return;
        };
        let a = [192, 0, 2, 10];
        let pass = |f: &Filter, p: &[u8]| f.test_packet(p).unwrap() == XDP_PASS;
        assert!(pass(&f, &ipv4(a, 6, 0, &tcp(SYN))), "a plain SYN passes");
        assert!(pass(&f, &ipv4(a, 6, 0, &tcp(ACK))));
        // Malformed shapes.
        // (The kernel refuses test runs shorter than an Ethernet header.)
        let mut vlan_cut = vec![0u8; 12];
        vlan_cut.extend_from_slice(&[0x81, 0x00]);
        assert!(!pass(&f, &vlan_cut), "VLAN tag cut off");
        let mut bad_ver = ipv4(a, 6, 0, &tcp(SYN));
        bad_ver[14] = 0x55;
        assert!(!pass(&f, &bad_ver), "IP version 5");
        let mut short_ihl = ipv4(a, 6, 0, &tcp(SYN));
        short_ihl[14] = 0x44;
        assert!(!pass(&f, &short_ihl), "IHL 4");
        let mut long_tot = ipv4(a, 6, 0, &tcp(SYN));
        long_tot[16] = 0x05;
        assert!(!pass(&f, &long_tot), "total length past the packet");
        let mut doff = ipv4(a, 6, 0, &tcp(SYN));
        doff[14 + 20 + 12] = 0x40;
        assert!(!pass(&f, &doff), "TCP data offset 4");
        assert!(!pass(&f, &ipv4(a, 6, 0, &tcp(SYN)[..10])), "truncated TCP");
        // Flag combinations.
        for (flags, what) in [
            (0x03, "SYN+FIN"),
            (0x06, "SYN+RST"),
            (0x00, "NULL"),
            (0x29, "XMAS"),
        ] {
            assert!(!pass(&f, &ipv4(a, 6, 0, &tcp(flags))), "{what}");
        }
        // Fragments: a later one is dropped, the first passes.
        assert!(!pass(&f, &ipv4(a, 17, 0x0010, &udp(1000, 2000))));
        assert!(pass(&f, &ipv4(a, 17, 0x2000, &udp(1000, 2000))));
        // Reflection: from port 123 to a non-service port dropped; to a service port passes.
        assert!(!pass(&f, &ipv4(a, 17, 0, &udp(123, 40000))));
        f.set_service_port(40000).unwrap();
        assert!(pass(&f, &ipv4(a, 17, 0, &udp(123, 40000))));
        assert!(pass(&f, &ipv4(a, 17, 0, &udp(5555, 40001))));
        // Lists.
        let b = [198, 51, 100, 7];
        assert!(pass(&f, &ipv4(b, 6, 0, &tcp(SYN))));
        f.block("198.51.100.7".parse().unwrap(), 32, 0).unwrap();
        assert!(!pass(&f, &ipv4(b, 6, 0, &tcp(SYN))));
        assert!(!pass(&f, &ipv4(b, 17, 0, &udp(1, 2))));
        let hits = |f: &Filter, a: &str| {
            f.blocks()
                .unwrap()
                .iter()
                .find(|x| x.net.0.to_string() == a)
                .map_or(0, |x| x.hits)
        };
        assert_eq!(hits(&f, "198.51.100.7"), 2, "drops counted per entry");
        // Re-blocking (a new expiry) keeps the count.
        f.block("198.51.100.7".parse().unwrap(), 32, 0).unwrap();
        assert_eq!(hits(&f, "198.51.100.7"), 2);
        f.block("203.0.113.0".parse().unwrap(), 24, 0).unwrap();
        assert!(!pass(&f, &ipv4([203, 0, 113, 99], 6, 0, &tcp(SYN))));
        assert!(pass(&f, &ipv4([203, 0, 114, 99], 6, 0, &tcp(SYN))));
        f.allow("203.0.113.99".parse().unwrap(), 32).unwrap();
        assert!(
            pass(&f, &ipv4([203, 0, 113, 99], 6, 0, &tcp(SYN))),
            "allow wins"
        );
        // An expired block no longer drops (expiry 1 ns after boot: long past).
        f.block("192.0.2.44".parse().unwrap(), 32, 1).unwrap();
        assert!(pass(&f, &ipv4([192, 0, 2, 44], 6, 0, &tcp(SYN))));
        // IPv6.
        let mut s6 = [0u8; 16];
        s6[0] = 0x20;
        s6[1] = 0x01;
        s6[2] = 0x0d;
        s6[3] = 0xb8;
        s6[15] = 5;
        assert!(pass(&f, &ipv6(s6, 6, &tcp(SYN))));
        f.block("2001:db8::".parse().unwrap(), 32, 0).unwrap();
        assert!(!pass(&f, &ipv6(s6, 6, &tcp(SYN))));
        // Counters by reason.
        let st = f.stats().unwrap();
        let get = |r: Reason| st.iter().find(|x| x.0 == r).map_or(0, |x| x.1);
        assert_eq!(get(Reason::TcpFlags), 4);
        assert_eq!(get(Reason::Reflection), 1);
        assert_eq!(get(Reason::Fragment), 1);
        assert!(get(Reason::MalformedIp) >= 3);
        assert!(get(Reason::BlockedNet) >= 2);
        assert_eq!(get(Reason::Allowed), 1);
    }

    #[test]
    fn prefixes_of_several_lengths_are_masked_probed_and_listed() {
        let Some(mut f) = filter(Config::default()) else {
            return;
        };
        let syn = |f: &Filter, a: [u8; 4]| f.test_packet(&ipv4(a, 6, 0, &tcp(SYN))).unwrap();
        // Host bits in the given address are ignored (the key is masked).
        f.block("10.20.30.40".parse().unwrap(), 16, 0).unwrap();
        f.block("192.0.2.99".parse().unwrap(), 24, 0).unwrap();
        f.block("230.1.2.3".parse().unwrap(), 3, 0).unwrap();
        assert_eq!(syn(&f, [10, 20, 1, 1]), XDP_DROP);
        assert_eq!(syn(&f, [10, 21, 1, 1]), XDP_PASS);
        assert_eq!(syn(&f, [192, 0, 2, 1]), XDP_DROP);
        assert_eq!(syn(&f, [250, 0, 0, 1]), XDP_DROP, "224.0.0.0/3");
        assert_eq!(syn(&f, [192, 0, 3, 1]), XDP_PASS);
        let mut listed: Vec<String> = f
            .blocks()
            .unwrap()
            .iter()
            .map(|b| format!("{}/{}", b.net.0, b.net.1))
            .collect();
        listed.sort();
        assert_eq!(listed, ["10.20.0.0/16", "192.0.2.0/24", "224.0.0.0/3"]);
        // Removing one length leaves the others working.
        assert!(f.unblock("10.20.0.0".parse().unwrap(), 16).unwrap());
        assert_eq!(syn(&f, [10, 20, 1, 1]), XDP_PASS);
        assert_eq!(syn(&f, [192, 0, 2, 1]), XDP_DROP);
        // IPv6 /48 and /64 (masked), and a /127.
        let mut a = [0u8; 16];
        a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 7]);
        a[15] = 9;
        f.block("2001:db8:7::ffff".parse().unwrap(), 48, 0).unwrap();
        f.block("2001:db9::1".parse().unwrap(), 127, 0).unwrap();
        assert_eq!(f.test_packet(&ipv6(a, 6, &tcp(SYN))).unwrap(), XDP_DROP);
        a[5] = 8;
        assert_eq!(f.test_packet(&ipv6(a, 6, &tcp(SYN))).unwrap(), XDP_PASS);
        let b: std::net::Ipv6Addr = "2001:db9::0".parse().unwrap();
        assert_eq!(
            f.test_packet(&ipv6(b.octets(), 6, &tcp(SYN))).unwrap(),
            XDP_DROP
        );
        // Up to 32 distinct lengths per family; the 33rd is refused with a message.
        for len in 0..32u8 {
            f.block("240.0.0.0".parse().unwrap(), len, 1).unwrap();
        }
        let err = f
            .block("2001:db8::".parse().unwrap(), 40, 0)
            .and_then(|()| {
                (0..40u8).try_for_each(|l| f.block("2001:db8::".parse().unwrap(), l, 1))
            });
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("distinct prefix lengths"), "{msg}");
    }

    #[test]
    fn synproxy_answers_syns_with_cookies_and_checks_acks() {
        let Some(mut f) = filter(Config {
            synproxy: true,
            ..Config::default()
        }) else {
            return;
        };
        f.set_synproxy_port(80, true).unwrap();
        let a = [192, 0, 2, 50];
        let syn = ipv4(a, 6, 0, &tcp_full(80, SYN, 1000, 0, &LINUX_SYN_OPTIONS));
        let (v, out) = f.test_packet_out(&syn).unwrap();
        assert_eq!(v, XDP_TX, "a SYN to a proxied port is answered");
        // Ethernet addresses swapped; IP addresses swapped; valid checksums.
        assert_eq!(&out[0..6], &syn[6..12]);
        assert_eq!(&out[6..12], &syn[0..6]);
        let ip = &out[14..34];
        assert_eq!(&ip[12..16], &[10, 0, 0, 1]);
        assert_eq!(&ip[16..20], &a);
        assert_eq!(csum(ip), 0, "IP checksum");
        let tcp = &out[34..];
        assert_eq!(tcp.len(), 40, "MSS, SACK, timestamps, window scale");
        assert_eq!(ip[2..4], (60u16).to_be_bytes());
        assert_eq!(&tcp[0..2], &80u16.to_be_bytes());
        assert_eq!(&tcp[2..4], &12345u16.to_be_bytes());
        assert_eq!(tcp[13], 0x12, "SYN+ACK");
        assert_eq!(u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]), 1001);
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 6, 0, 40]);
        pseudo.extend_from_slice(tcp);
        assert_eq!(csum(&pseudo), 0, "TCP checksum");
        assert_eq!(&tcp[20..24], &[2, 4, 0x05, 0xb4], "our MSS");
        assert_eq!(&tcp[36..40], &[1, 3, 3, 7], "our window scale");
        // The timestamp carries the client's window scale (7) and SACK (bit 4).
        let tsval = u32::from_be_bytes([tcp[28], tcp[29], tcp[30], tcp[31]]);
        assert_eq!(tsval & 0x3f, 0x17);
        assert_eq!(
            &tcp[32..36],
            &[0, 0, 0x12, 0x34],
            "echoes the client's timestamp"
        );
        // The client's ACK with the cookie passes; a wrong one is dropped.
        let cookie = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let ack = |n: u32| ipv4(a, 6, 0, &tcp_full(80, ACK, 1001, n, &[]));
        assert_eq!(
            f.test_packet(&ack(cookie.wrapping_add(1))).unwrap(),
            XDP_PASS
        );
        assert_eq!(
            f.test_packet(&ack(cookie.wrapping_add(77))).unwrap(),
            XDP_DROP
        );
        // A SYN without options gets an MSS-only answer; other ports are not proxied.
        let (v, out) = f
            .test_packet_out(&ipv4(a, 6, 0, &tcp_full(80, SYN, 5, 0, &[])))
            .unwrap();
        assert_eq!((v, out.len()), (XDP_TX, 14 + 20 + 24));
        assert_eq!(
            f.test_packet(&ipv4(a, 6, 0, &tcp_full(81, ACK, 1, 1, &[])))
                .unwrap(),
            XDP_PASS
        );
        // IPv6: the same, with the IPv6 pseudo header.
        let mut a6 = [0u8; 16];
        a6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a6[15] = 0x50;
        let syn6 = ipv6(a6, 6, &tcp_full(80, SYN, 4000, 0, &LINUX_SYN_OPTIONS));
        let (v, out) = f.test_packet_out(&syn6).unwrap();
        assert_eq!(v, XDP_TX, "an IPv6 SYN to a proxied port is answered");
        assert_eq!(&out[0..6], &syn6[6..12]);
        let ip = &out[14..54];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(&ip[4..7], &[0, 40, 6], "payload length 40, next header TCP");
        assert_eq!(
            &ip[8..24],
            &syn6[14 + 24..14 + 40],
            "source: the SYN's destination"
        );
        assert_eq!(&ip[24..40], &a6);
        let tcp = &out[54..];
        assert_eq!(tcp.len(), 40);
        assert_eq!(tcp[13], 0x12);
        assert_eq!(u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]), 4001);
        let mut pseudo = ip[8..40].to_vec();
        pseudo.extend_from_slice(&[0, 0, 0, 40, 0, 0, 0, 6]);
        pseudo.extend_from_slice(tcp);
        assert_eq!(csum(&pseudo), 0, "TCP checksum over the IPv6 pseudo header");
        let cookie = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let ack6 = |n: u32| ipv6(a6, 6, &tcp_full(80, ACK, 4001, n, &[]));
        assert_eq!(
            f.test_packet(&ack6(cookie.wrapping_add(1))).unwrap(),
            XDP_PASS
        );
        assert_eq!(
            f.test_packet(&ack6(cookie.wrapping_add(9))).unwrap(),
            XDP_DROP
        );
        let st = f.stats().unwrap();
        let get = |r: Reason| st.iter().find(|x| x.0 == r).map_or(0, |x| x.1);
        assert_eq!(get(Reason::SynproxySynAck), 3);
        assert_eq!(get(Reason::SynproxyCookie), 2);
        assert_eq!(get(Reason::SynproxyBad), 2);
    }

    /// Random mutations of valid packets (a small in-process fuzzer: the
    /// program reads attacker bytes): every verdict is DROP, PASS or TX, and
    /// every packet is counted under exactly one reason.
    #[test]
    fn mutated_packets_get_a_verdict_and_are_counted_once() {
        let Some(mut f) = filter(Config {
            synproxy: true,
            syn_budget: 1000,
            pkt_budget: 100_000,
            ..Config::default()
        }) else {
            return;
        };
        f.set_synproxy_port(80, true).unwrap();
        f.block("203.0.113.0".parse().unwrap(), 24, 0).unwrap();
        let seeds: Vec<Vec<u8>> = vec![
            ipv4(
                [192, 0, 2, 1],
                6,
                0,
                &tcp_full(80, SYN, 7, 0, &LINUX_SYN_OPTIONS),
            ),
            ipv4([192, 0, 2, 1], 6, 0, &tcp_full(80, ACK, 7, 9, &[])),
            ipv4([203, 0, 113, 5], 17, 0, &udp(53, 999)),
            ipv4([192, 0, 2, 1], 17, 0x2000, &udp(1, 2)),
            ipv6([0x20; 16], 6, &tcp(SYN)),
            ipv6([0x20; 16], 44, &[17, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 2]),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let runs = 20_000u64;
        for i in 0..runs {
            let mut p = seeds[(i as usize) % seeds.len()].clone();
            for _ in 0..(rnd() % 4 + 1) {
                let r = rnd();
                match r % 3 {
                    0 => {
                        let at = (r >> 8) as usize % p.len();
                        p[at] = (r >> 32) as u8;
                    }
                    1 => p.truncate((14 + (r >> 8) % (p.len() as u64 - 13)) as usize),
                    _ => p.extend((0..(r >> 8) % 40).map(|b| b as u8)),
                }
            }
            let v = f.test_packet(&p).unwrap();
            assert!(
                matches!(v, XDP_DROP | XDP_PASS | XDP_TX),
                "verdict {v} for {p:?}"
            );
        }
        let counted: u64 = f.stats().unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, runs, "every packet counted once");
    }

    #[test]
    fn per_source_rate_limits() {
        let Some(f) = filter(Config {
            syn_budget: 5,
            pkt_budget: 20,
            window_ms: 60_000,
            ..Config::default()
        }) else {
            return;
        };
        let a = [192, 0, 2, 77];
        let verdicts: Vec<u32> = (0..8)
            .map(|_| f.test_packet(&ipv4(a, 6, 0, &tcp(SYN))).unwrap())
            .collect();
        assert_eq!(
            verdicts.iter().filter(|v| **v == XDP_PASS).count(),
            5,
            "{verdicts:?}"
        );
        // Other packets from it: up to the packet budget in all.
        let more: Vec<u32> = (0..20)
            .map(|_| f.test_packet(&ipv4(a, 6, 0, &tcp(ACK))).unwrap())
            .collect();
        assert_eq!(
            more.iter().filter(|v| **v == XDP_PASS).count(),
            12,
            "{more:?}"
        );
        // Another source is not affected.
        assert_eq!(
            f.test_packet(&ipv4([192, 0, 2, 78], 6, 0, &tcp(SYN)))
                .unwrap(),
            XDP_PASS
        );
    }
}
