//! IPv6 drills in a network namespace the drill creates (root only): a veth
//! pair joins it to the host, and an AnyIP route lets the bots inside bind
//! any address of `fd00:1e7e:b::/48`, so that per-/64 defenses are exercised
//! with real IPv6 sources. The host side of the veth is `fd00:1e7e::1`; an
//! edge listening on `[::]` is reached there. Everything is removed on drop.

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;

/// The host side of the veth: where the edge is reached from inside.
pub const HOST_ADDR: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x1e7e, 0, 0, 0, 0, 0, 1);
/// The bots' prefix (a /48: 65,536 distinct /64s).
pub const BOTS: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x1e7e, 0xb, 0, 0, 0, 0, 0);

/// Why the namespace could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the IPv6 drill namespace ({step}): {message}. It needs root (CAP_NET_ADMIN) and iproute2")]
pub struct NetnsError {
    pub step: String,
    pub message: String,
}

/// A namespace with its veth pair and routes; removed on drop.
pub struct Netns {
    pub name: String,
    host_if: String,
}

fn ip(args: &[&str]) -> Result<(), NetnsError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetnsError {
            step: format!("ip {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError {
            step: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Netns {
    pub fn create() -> Result<Netns, NetnsError> {
        let id = std::process::id() % 100_000;
        let name = format!("levee-drill-{id}");
        let host_if = format!("ldr{id}a");
        let ns_if = format!("ldr{id}b");
        ip(&["netns", "add", &name])?;
        let ns = Netns {
            name: name.clone(),
            host_if: host_if.clone(),
        };
        let inside = |args: &[&str]| {
            let mut v = vec!["netns", "exec", &name, "ip"];
            v.extend_from_slice(args);
            ip(&v)
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", &name])?;
        ip(&[
            "-6",
            "addr",
            "add",
            "fd00:1e7e::1/64",
            "dev",
            &host_if,
            "nodad",
        ])?;
        ip(&["link", "set", &host_if, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        inside(&[
            "-6",
            "addr",
            "add",
            "fd00:1e7e::2/64",
            "dev",
            &ns_if,
            "nodad",
        ])?;
        inside(&["link", "set", &ns_if, "up"])?;
        inside(&[
            "-6",
            "route",
            "add",
            "local",
            "fd00:1e7e:b::/48",
            "dev",
            "lo",
        ])?;
        // IPv6 binds to AnyIP addresses need non-local binding (this namespace only).
        ip(&[
            "netns",
            "exec",
            &name,
            "sysctl",
            "-qw",
            "net.ipv6.ip_nonlocal_bind=1",
        ])?;
        inside(&["-6", "route", "add", "default", "via", "fd00:1e7e::1"])?;
        ip(&[
            "-6",
            "route",
            "add",
            "fd00:1e7e:b::/48",
            "via",
            "fd00:1e7e::2",
            "dev",
            &host_if,
        ])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["-6", "route", "del", "fd00:1e7e:b::/48"]);
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// The IPv6 source standing for an IPv4 bot address 127.A.B.C: /24s map to
/// /64s, so per-prefix behaviour is the same in both families.
pub fn map_v6(v4: IpAddr) -> IpAddr {
    match v4 {
        IpAddr::V4(a) => {
            let o = a.octets();
            let seg = BOTS.segments();
            IpAddr::V6(Ipv6Addr::new(
                seg[0],
                seg[1],
                seg[2],
                (u16::from(o[1]) << 8) | u16::from(o[2]),
                0,
                0,
                0,
                u16::from(o[3]),
            ))
        }
        v6 => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_prefixes_map_to_v6_prefixes() {
        assert_eq!(
            map_v6("127.20.3.7".parse().unwrap()),
            "fd00:1e7e:b:1403::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            map_v6("127.250.0.1".parse().unwrap()),
            "fd00:1e7e:b:fa00::1".parse::<IpAddr>().unwrap()
        );
    }
}
