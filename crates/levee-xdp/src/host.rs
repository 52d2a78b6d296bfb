//! Host settings the filter relies on: the kernel's SYN cookies (the baseline
//! defence against SYN floods: with them a full SYN queue costs no memory)
//! and the kernel's own counters of cookies sent and checked.
//!
//! For the XDP SYN proxy it also says what the host needs (nftables SYNPROXY
//! rules and two sysctls, `synproxy_rules`) and checks the sysctls
//! (`synproxy_problems`); it never changes the firewall itself.
//!
//! It reads and writes `/proc/sys/net/ipv4/tcp_syncookies` and reads
//! `/proc/net/netstat` and two more sysctls; nothing else.

use std::path::Path;

const SYSCTL: &str = "/proc/sys/net/ipv4/tcp_syncookies";

/// `net.ipv4.tcp_syncookies`: 0 off, 1 when the SYN queue overflows, 2 always.
pub fn syncookies() -> Option<u8> {
    std::fs::read_to_string(SYSCTL).ok()?.trim().parse().ok()
}

/// Turn SYN cookies on (1) when they are off; what the setting is afterwards,
/// and whether it was changed. Needs root in the network namespace.
pub fn ensure_syncookies() -> Result<(u8, bool), String> {
    match syncookies() {
        Some(v) if v > 0 => Ok((v, false)),
        Some(_) => std::fs::write(SYSCTL, "1")
            .map(|()| (1, true))
            .map_err(|e| format!("cannot enable SYN cookies ({SYSCTL}): {e}; run `sysctl -w net.ipv4.tcp_syncookies=1` as root")),
        None => Err(format!("cannot read {SYSCTL}")),
    }
}

/// The kernel's SYN-cookie counters (`TcpExt`: SyncookiesSent, SyncookiesRecv,
/// SyncookiesFailed, ListenOverflows, ListenDrops) in this network namespace.
pub fn syncookie_counters() -> Vec<(String, u64)> {
    read_tcpext(Path::new("/proc/net/netstat"))
}

fn read_tcpext(p: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    parse_tcpext(&text)
}

fn parse_tcpext(text: &str) -> Vec<(String, u64)> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Vec::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter(|(n, _)| {
            matches!(
                *n,
                "SyncookiesSent"
                    | "SyncookiesRecv"
                    | "SyncookiesFailed"
                    | "ListenOverflows"
                    | "ListenDrops"
            )
        })
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

/// Whether this process may load and attach XDP programs: CAP_NET_ADMIN and
/// CAP_BPF (or CAP_SYS_ADMIN) in its effective set; an error saying what to do.
pub fn check_privileges() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    const NET_ADMIN: u32 = 12;
    const SYS_ADMIN: u32 = 21;
    const BPF: u32 = 39;
    if has(NET_ADMIN) && (has(BPF) || has(SYS_ADMIN)) {
        Ok(())
    } else {
        Err("the XDP filter needs root (or the capabilities CAP_BPF and CAP_NET_ADMIN): run as root, e.g. with sudo".into())
    }
}

/// The index of `iface` in this network namespace.
pub fn ifindex(iface: &str) -> Option<u32> {
    check_iface(iface).ok()?;
    std::fs::read_to_string(
        std::path::Path::new("/sys/class/net")
            .join(iface)
            .join("ifindex"),
    )
    .ok()?
    .trim()
    .parse()
    .ok()
}

/// Whether `iface` exists in this network namespace.
pub fn check_iface(iface: &str) -> Result<(), String> {
    if iface.is_empty() || iface.contains('/') || iface.contains("..") {
        return Err(format!("{iface:?} is not an interface name"));
    }
    if std::path::Path::new("/sys/class/net").join(iface).exists() {
        Ok(())
    } else {
        Err(format!("no interface {iface:?} here (see `ip link`)"))
    }
}

/// The host settings the XDP SYN proxy needs, as a shell script: the
/// sysctls and an nftables table whose SYNPROXY statement opens the real
/// connection when a client's ACK carries a valid cookie. XDP answers the
/// SYNs; without XDP these rules alone still proxy (more slowly).
pub fn synproxy_rules(ports: &[u16], mss: u16, wscale: u8) -> String {
    let set = port_set(ports);
    format!(
        "# Host settings for Levee's XDP SYN proxy (ports {set}); run as root.\n\
sysctl -w net.ipv4.tcp_syncookies=1\n\
sysctl -w net.ipv4.tcp_timestamps=1\n\
sysctl -w net.netfilter.nf_conntrack_tcp_loose=0\n\
nft -f - <<'NFT'\n{}NFT\n",
        synproxy_nft(ports, mss, wscale)
    )
}

fn port_set(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The nftables table of `synproxy_rules` alone (for `nft -f`).
pub fn synproxy_nft(ports: &[u16], mss: u16, wscale: u8) -> String {
    let set = port_set(ports);
    format!(
        r#"table inet levee_synproxy {{
	chain prerouting {{
		type filter hook prerouting priority raw; policy accept;
		tcp dport {{ {set} }} tcp flags syn notrack
	}}
	chain input {{
		type filter hook input priority filter; policy accept;
		tcp dport {{ {set} }} ct state invalid,untracked synproxy mss {mss} wscale {wscale} timestamp sack-perm
		tcp dport {{ {set} }} ct state invalid drop
	}}
}}
"#
    )
}

/// What is missing on this host for the SYN proxy on `ports` (empty: ready):
/// the sysctls, and the nftables table that must turn valid cookie ACKs into
/// connections (without it every connection to those ports would fail).
pub fn synproxy_problems(ports: &[u16]) -> Vec<String> {
    if ports.is_empty() {
        return Vec::new();
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut out = Vec::new();
    match read("/proc/sys/net/netfilter/nf_conntrack_tcp_loose").as_deref() {
        Some("0") => {}
        Some(v) => out.push(format!(
            "net.netfilter.nf_conntrack_tcp_loose is {v}, must be 0"
        )),
        None => out.push("connection tracking is not loaded (nf_conntrack)".into()),
    }
    if read("/proc/sys/net/ipv4/tcp_timestamps").as_deref() == Some("0") {
        out.push("net.ipv4.tcp_timestamps is 0, should be 1".into());
    }
    if syncookies() == Some(0) {
        out.push("net.ipv4.tcp_syncookies is 0, should be 1".into());
    }
    match std::process::Command::new("nft")
        .args(["list", "table", "inet", "levee_synproxy"])
        .output()
    {
        Err(_) => out.push("nft is not installed (apt-get install nftables)".into()),
        Ok(o) if !o.status.success() => {
            out.push("the nftables table inet levee_synproxy is not loaded".into())
        }
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let covered = |p: u16| {
                text.lines().any(|l| {
                    l.contains("synproxy")
                        && l.split(|c: char| !c.is_ascii_digit())
                            .any(|w| w == p.to_string())
                })
            };
            for p in ports {
                if !covered(*p) {
                    out.push(format!(
                        "the nftables table inet levee_synproxy does not cover port {p}"
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpext_counters_are_read_by_name() {
        let t = "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts ListenOverflows\nTcpExt: 7 5 1 0 3\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            parse_tcpext(t),
            vec![
                ("SyncookiesSent".to_string(), 7),
                ("SyncookiesRecv".to_string(), 5),
                ("SyncookiesFailed".to_string(), 1),
                ("ListenOverflows".to_string(), 3)
            ]
        );
        assert!(parse_tcpext("garbage").is_empty());
        let r = synproxy_rules(&[80, 443], 1460, 7);
        assert!(
            r.contains(
                "tcp dport { 80, 443 } ct state invalid,untracked synproxy mss 1460 wscale 7"
            ),
            "{r}"
        );
        assert!(!syncookie_counters().is_empty(), "this kernel has TcpExt");
    }
}
