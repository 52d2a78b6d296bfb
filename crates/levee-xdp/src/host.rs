//! Host settings the filter relies on: the kernel's SYN cookies (the baseline
//! defence against SYN floods: with them a full SYN queue costs no memory)
//! and the kernel's own counters of cookies sent and checked.
//!
//! It reads and writes `/proc/sys/net/ipv4/tcp_syncookies` and reads
//! `/proc/net/netstat`; nothing else.

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
        assert!(!syncookie_counters().is_empty(), "this kernel has TcpExt");
    }
}
