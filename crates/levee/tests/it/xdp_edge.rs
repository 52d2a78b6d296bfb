//! The edge feeding the XDP packet filter, on a veth pair between two
//! network namespaces the test creates (addresses 10.77.0.0/24 exist only
//! inside them). A `levee serve` with `[xdp] iface` protects the server side;
//! from the client side:
//! - bounded hping3 SYN and UDP floods from a statically blocked source are
//!   dropped and counted by the filter while a legitimate client keeps
//!   completing HTTP requests through the edge;
//! - a client blocked at L7 (admin API) is dropped at L3 within 1 s, and an
//!   expiring block leaves the filter when it expires;
//! - protection stays while the edge is down, and a restarted edge reuses
//!   the attached filter.
//!
//! Needs root (CI runs as root), hping3 and XDP; skipped with a message
//! where they are missing.

use super::xdp_filter::stat;
use super::*;

pub(crate) const SRV: &str = "10.77.0.1";
pub(crate) const LEGIT: &str = "10.77.0.2";
pub(crate) const SRV6: &str = "fd77::1";
pub(crate) const LEGIT6: &str = "fd77::2";
const FLOODER: &str = "10.77.0.3";
const L7: &str = "10.77.0.4";
const SHORT: &str = "10.77.0.5";

fn sh(args: &[&str]) -> (i32, String, String) {
    run(args[0], &args[1..])
}

/// Two namespaces joined by a veth pair, a bpffs of our own; removed on drop.
pub(crate) struct Lab {
    pub srv: String,
    pub cli: String,
    pub iface: String,
    bpf: PathBuf,
    pub children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let pins = self.pins();
        sh(&[
            env!("CARGO_BIN_EXE_levee"),
            "xdp",
            "detach",
            "--pin-dir",
            &pins,
        ]);
        sh(&["ip", "netns", "del", &self.srv]);
        sh(&["ip", "netns", "del", &self.cli]);
        sh(&["umount", self.bpf.to_str().unwrap()]);
    }
}

impl Lab {
    pub(crate) fn new() -> Option<Lab> {
        if sh(&["which", "hping3"]).0 != 0 {
            eprintln!("skipped: hping3 is missing (run scripts/install-test-deps.sh)");
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = std::process::id() % 100_000 * 10 + n % 10;
        let (srv, cli) = (format!("lvs{id}"), format!("lvc{id}"));
        if sh(&["ip", "netns", "add", &srv]).0 != 0 {
            eprintln!("skipped: cannot create a network namespace (needs root)");
            return None;
        }
        sh(&["ip", "netns", "add", &cli]);
        let bpf = scratch("xdp-edge-bpffs");
        let lab = Lab {
            iface: format!("lva{id}"),
            srv,
            cli,
            bpf,
            children: Vec::new(),
        };
        if sh(&["mount", "-t", "bpf", "bpf", lab.bpf.to_str().unwrap()]).0 != 0 {
            eprintln!("skipped: cannot mount bpffs");
            return None;
        }
        let peer = format!("lvb{id}");
        let (code, _, err) = sh(&[
            "ip", "link", "add", &lab.iface, "netns", &lab.srv, "type", "veth", "peer", "name",
            &peer, "netns", &lab.cli,
        ]);
        assert_eq!(code, 0, "veth: {err}");
        for (ns, dev, addrs) in [
            (&lab.srv, &lab.iface, vec![SRV]),
            (&lab.cli, &peer, vec![LEGIT, FLOODER, L7, SHORT]),
        ] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            for a in addrs {
                let cidr = format!("{a}/24");
                assert_eq!(sh(&["ip", "-n", ns, "addr", "add", &cidr, "dev", dev]).0, 0);
            }
            assert_eq!(sh(&["ip", "-n", ns, "link", "set", dev, "up"]).0, 0);
        }
        // IPv6 on the pair too (no duplicate-address wait).
        for (ns, dev, a) in [(&lab.srv, &lab.iface, SRV6), (&lab.cli, &peer, LEGIT6)] {
            let cidr = format!("{a}/64");
            assert_eq!(
                sh(&["ip", "-n", ns, "addr", "add", &cidr, "dev", dev, "nodad"]).0,
                0
            );
        }
        // Answers to spoofed sources go back over the veth (and die there).
        sh(&[
            "ip", "-n", &lab.srv, "route", "add", "default", "via", LEGIT,
        ]);
        Some(lab)
    }

    pub(crate) fn pins(&self) -> String {
        self.bpf.join("levee").to_str().unwrap().to_string()
    }

    pub(crate) fn spawn_in_srv(&mut self, args: &[&str], stderr: Stdio) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.srv])
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// curl from `src` in the client namespace: (exit code, HTTP status).
    pub(crate) fn get(&self, src: &str, timeout_s: &str) -> (i32, String) {
        self.get_url(src, &format!("http://{SRV}:8080/"), timeout_s)
    }

    /// curl `url` from `src` (IPv4 or IPv6) with the site's Host header.
    pub(crate) fn get_url(&self, src: &str, url: &str, timeout_s: &str) -> (i32, String) {
        let host = format!("Host: {SRV}");
        let (code, out, _) = sh(&[
            "ip",
            "netns",
            "exec",
            &self.cli,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &host,
            "--interface",
            src,
            "--connect-timeout",
            timeout_s,
            "--max-time",
            timeout_s,
            url,
        ]);
        (code, out)
    }

    /// `levee xdp stats`, run in the server's namespace (so the kernel's
    /// SYN-cookie counters are the server's).
    pub(crate) fn stats(&self) -> String {
        let pins = self.pins();
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.srv,
            env!("CARGO_BIN_EXE_levee"),
            "xdp",
            "stats",
            "--interval-ms",
            "10",
            "--pin-dir",
            &pins,
        ])
        .1
    }

    /// A bounded SYN flood to the edge's port from random spoofed sources;
    /// the packets hping3 sent.
    pub(crate) fn spoofed_syn_flood(&self, count: &str) -> u64 {
        self.hping(&[
            "-S",
            "-p",
            "8080",
            "--rand-source",
            "-c",
            count,
            "-i",
            "u50",
            SRV,
        ])
    }

    pub(crate) fn listed(&self, addr: &str) -> bool {
        let pins = self.pins();
        let (_, list, _) = sh(&[
            env!("CARGO_BIN_EXE_levee"),
            "xdp",
            "list",
            "--pin-dir",
            &pins,
        ]);
        list.lines().any(|l| l.starts_with(&format!("{addr}/")))
    }

    /// hping3 in the client namespace; the packets it says it sent.
    pub(crate) fn hping(&self, args: &[&str]) -> u64 {
        let (_, out, err) = sh(&[
            &["ip", "netns", "exec", &self.cli, "timeout", "20", "hping3"],
            args,
        ]
        .concat());
        let text = format!("{out}{err}");
        text.lines()
            .find_map(|l| {
                l.split(" packets transmitted")
                    .next()
                    .filter(|_| l.contains("packets transmitted"))
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("hping3 said: {text}"))
    }

    /// Run `attack` while the legitimate client browses (curl from LEGIT,
    /// one request after another); its HTTP statuses and the attack's result.
    pub(crate) fn browse_during<T>(&self, attack: impl FnOnce() -> T) -> (Vec<String>, T) {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let browse = s.spawn(|| {
                let mut codes = Vec::new();
                let t = Instant::now();
                while !done.load(std::sync::atomic::Ordering::Relaxed)
                    && t.elapsed() < Duration::from_secs(30)
                {
                    // 4 s: a SYN or SYN-ACK lost on the flooded veth costs
                    // the client a 1 s retransmission, a second one 2 s more
                    // (the kernel's schedule; a browser waits far longer).
                    let (exit, code) = self.get(LEGIT, "4");
                    codes.push(if code == "200" {
                        code
                    } else {
                        format!("{code} (curl exit {exit})")
                    });
                }
                codes
            });
            let out = attack();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            (browse.join().unwrap(), out)
        })
    }

    /// `admin` on the server side's loopback.
    pub(crate) fn admin(&self, method: &str, path: &str) -> String {
        let url = format!("http://127.0.0.1:19090{path}");
        let auth = format!("Authorization: Bearer {TOKEN}");
        sh(&[
            "ip", "netns", "exec", &self.srv, "curl", "-s", "-X", method, "-H", &auth, &url,
        ])
        .1
    }
}

pub(crate) fn edge_config(lab: &Lab, dir: &std::path::Path, xdp_extra: &str) -> PathBuf {
    let text = format!(
        r#"
[[listener]]
address = "{SRV}:8080"

[[listener]]
address = "[{SRV6}]:8080"

[admin]
address = "127.0.0.1:19090"
token = "{TOKEN}"

[access_log]
path = "off"

[incidents]
enabled = false

[lists]
block = ["{FLOODER}"]

[xdp]
iface = "{iface}"
pin_dir = "{pins}"
{xdp_extra}

[[site]]
name = "lab"
hosts = ["{SRV}"]
[[site.origin]]
address = "127.0.0.1:18080"
"#,
        iface = lab.iface,
        pins = lab.pins(),
    );
    let p = dir.join("levee.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub(crate) fn start_edge(lab: &mut Lab, cfg: &std::path::Path, log: &std::path::Path) -> usize {
    let err = std::fs::File::create(log).unwrap();
    let i = lab.spawn_in_srv(
        &[
            env!("CARGO_BIN_EXE_levee"),
            "serve",
            "--config",
            cfg.to_str().unwrap(),
        ],
        Stdio::from(err),
    );
    let t = Instant::now();
    let ready = || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("edge listening")
    };
    while !ready() || lab.get(LEGIT, "1").1 != "200" {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "edge did not answer: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    i
}

/// Start the edge with the packet filter (`[xdp]` plus `xdp_extra`); its
/// index in `lab.children` and its start-up lines, or `None` (skip, said)
/// where the kernel cannot run XDP. A verifier refusal is a failure.
pub(crate) fn start_filtered_edge(
    lab: &mut Lab,
    dir: &std::path::Path,
    xdp_extra: &str,
) -> Option<(usize, PathBuf, String)> {
    let cfg = edge_config(lab, dir, xdp_extra);
    let log = dir.join("edge.log");
    let edge = start_edge(lab, &cfg, &log);
    let said = std::fs::read_to_string(&log).unwrap();
    if said.contains("packet filter off") {
        assert!(
            !said.contains("Verifier output"),
            "the kernel's verifier rejected the program: {said}"
        );
        eprintln!("skipped: the kernel refused XDP here: {said}");
        return None;
    }
    Some((edge, cfg, said))
}

impl Lab {
    /// Wait until `addr` is in the filter's block list; how long it took.
    pub(crate) fn await_listed(&self, addr: &str, within: Duration, what: &str) -> Duration {
        let t = Instant::now();
        while !self.listed(addr) {
            assert!(t.elapsed() < within, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    }
}

#[test]
fn floods_dropped_l7_blocks_mirrored_and_restart_keeps_protection() {
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let dir = scratch("xdp-edge");
    let levee = env!("CARGO_BIN_EXE_levee");
    lab.spawn_in_srv(
        &[levee, "demo-origin", "--listen", "127.0.0.1:18080"],
        Stdio::null(),
    );
    // The SYN proxy is asked for, but this lab has no SYNPROXY table: it must
    // stay off (else every connection to the port would fail) and say why.
    let Some((edge, cfg, said)) = start_filtered_edge(&mut lab, &dir, "synproxy_ports = [8080]")
    else {
        return;
    };
    assert!(
        said.contains("XDP SYN proxy left off for ports [8080]")
            && said.contains("levee_synproxy is not loaded"),
        "{said}"
    );
    assert!(said.contains("packet filter on"), "{said}");

    // 1. Floods from the statically blocked source, while a legitimate client browses.
    lab.await_listed(FLOODER, Duration::from_secs(1), "static block not mirrored");
    let before = stat(&lab.stats(), "blocked_address");
    let (codes, sent) = lab.browse_during(|| {
        let syn = lab.hping(&[
            "-S", "-p", "8080", "-a", FLOODER, "-c", "20000", "-i", "u50", SRV,
        ]);
        let udp = lab.hping(&[
            "--udp", "-p", "9999", "-s", "53", "-k", "-a", FLOODER, "-c", "20000", "-i", "u50", SRV,
        ]);
        syn + udp
    });
    let dropped = stat(&lab.stats(), "blocked_address") - before;
    eprintln!(
        "flood: {sent} packets sent, {dropped} dropped; legit {} requests",
        codes.len()
    );
    assert!(sent >= 30_000, "hping3 sent only {sent}");
    assert!(
        dropped * 100 >= sent * 95,
        "dropped {dropped} of {sent} flood packets"
    );
    assert!(codes.len() >= 10, "{codes:?}");
    let failed: Vec<_> = codes.iter().filter(|c| *c != "200").collect();
    assert!(
        failed.is_empty(),
        "legitimate client failed during the flood: {failed:?} of {}",
        codes.len()
    );
    // The edge's /metrics carries the filter's counters (published each second).
    let t = Instant::now();
    loop {
        let m = lab.admin("GET", "/metrics");
        let n = m
            .lines()
            .find_map(|l| l.strip_prefix("levee_xdp_packets_total{reason=\"blocked_address\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if n >= dropped && m.contains("levee_xdp_mirrored_blocks 1") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(3), "{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A reflection-shaped flood from an unlisted source: dropped by the protocol check.
    let refl = lab.hping(&[
        "--udp", "-p", "40000", "-s", "123", "-k", "-a", LEGIT, "-c", "500", "-i", "u200", SRV,
    ]);
    assert!(stat(&lab.stats(), "udp_reflection") * 100 >= refl * 95);

    // The kernel's SYN cookies (the baseline; the edge turned them on): a
    // spoofed SYN flood from random sources overflows the SYN queue, the
    // kernel answers with cookies, and the legitimate client is not hurt.
    let cookies = |lab: &Lab| {
        let out = lab.stats();
        assert!(out.contains("net.ipv4.tcp_syncookies = 1"), "{out}");
        stat(&out, "SyncookiesSent")
    };
    let sent_before = cookies(&lab);
    let (codes, syns) = lab.browse_during(|| lab.spoofed_syn_flood("20000"));
    let cookie_syns = cookies(&lab) - sent_before;
    eprintln!(
        "kernel SYN cookies: {syns} spoofed SYNs, {cookie_syns} cookies sent; legit {} requests",
        codes.len()
    );
    assert!(cookie_syns > 0, "the kernel sent no SYN cookie");
    let failed: Vec<_> = codes.iter().filter(|c| *c != "200").collect();
    assert!(failed.is_empty(), "{failed:?} of {}", codes.len());

    // 2. Blocked at L7 (admin API), dropped at L3 within 1 s.
    assert_eq!(lab.get(L7, "2").1, "200");
    let answer = lab.admin("POST", &format!("/blocks?cidr={L7}&ttl=300"));
    assert!(answer.contains("blocked"), "{answer}");
    let took = lab.await_listed(
        L7,
        Duration::from_secs(1),
        "L7 block not in the filter after 1 s",
    );
    let before = stat(&lab.stats(), "blocked_address");
    let (code, _) = lab.get(L7, "1");
    assert_eq!(
        code, 28,
        "the blocked client must time out (no SYN-ACK), curl exit {code}"
    );
    assert!(stat(&lab.stats(), "blocked_address") > before);
    eprintln!("L7 block reached the packet filter in {took:?}");
    // An expiring block leaves the filter when the edge expires it.
    lab.admin("POST", &format!("/blocks?cidr={SHORT}&ttl=1"));
    let t = Instant::now();
    lab.await_listed(SHORT, Duration::from_secs(1), "short block not mirrored");
    while lab.listed(SHORT) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "expired block still in the filter"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lab.get(SHORT, "2").1, "200");

    // 3. The edge stops: the filter stays and keeps dropping.
    let pid = lab.children[edge].id().to_string();
    sh(&["kill", "-TERM", &pid]);
    let _ = lab.children[edge].wait();
    let before = stat(&lab.stats(), "blocked_address");
    let n = lab.hping(&[
        "-S", "-p", "8080", "-a", FLOODER, "-c", "200", "-i", "u500", SRV,
    ]);
    assert!(stat(&lab.stats(), "blocked_address") - before >= n * 95 / 100);
    assert_eq!(
        lab.get(L7, "1").0,
        28,
        "L7 block lost while the edge is down"
    );
    // Restarted, the edge reuses the attached filter; static blocks stay.
    let log2 = dir.join("edge2.log");
    start_edge(&mut lab, &cfg, &log2);
    let said = std::fs::read_to_string(&log2).unwrap();
    assert!(said.contains("already attached, reused"), "{said}");
    assert!(lab.listed(FLOODER));
    assert_eq!(lab.get(FLOODER, "1").0, 28);
    // A second edge pointed at the same pins but another interface is told
    // so (and runs without the filter); the filter stays where it is.
    let other = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(":8080", ":8081")
        .replace(":19090", ":19091")
        .replace(&format!("iface = \"{}\"", lab.iface), "iface = \"lo\"");
    let cfg3 = dir.join("other.toml");
    std::fs::write(&cfg3, other).unwrap();
    let log3 = dir.join("edge3.log");
    let err = std::fs::File::create(&log3).unwrap();
    lab.spawn_in_srv(
        &[levee, "serve", "--config", cfg3.to_str().unwrap()],
        Stdio::from(err),
    );
    let t = Instant::now();
    let said = loop {
        let said = std::fs::read_to_string(&log3).unwrap_or_default();
        if said.contains("edge listening") || t.elapsed() > Duration::from_secs(10) {
            break said;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(said.contains("attached to another interface"), "{said}");
    assert_eq!(lab.get(FLOODER, "1").0, 28, "the filter left its interface");
}

/// Without the rights to load XDP, the edge says so once and serves anyway.
#[test]
fn edge_without_xdp_rights_says_so_once_and_serves() {
    if run("which", &["setpriv"]).0 != 0 {
        eprintln!("skipped: setpriv (util-linux) is missing");
        return;
    }
    let origin = Origin::start();
    let edge = Edge::start_unprivileged(
        "xdp-unprivileged",
        &config(origin.addr, "", "").replace("[[site]]", "[xdp]\niface = \"lo\"\n\n[[site]]"),
    );
    let (code, body) = http_get(edge.addr, "/", &[]);
    assert_eq!(code, 200, "{body}");
    let said = edge.stderr();
    let off: Vec<&String> = said
        .iter()
        .filter(|l| l.contains("packet filter off"))
        .collect();
    assert_eq!(off.len(), 1, "{said:?}");
    assert!(off[0].contains("needs root"), "{said:?}");
}
