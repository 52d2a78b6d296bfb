//! `[xdp]`: the packet filter the edge feeds. With `iface` set, `levee serve`
//! attaches Levee's XDP program to that interface (or reuses one already
//! attached and pinned) and mirrors every block decision into it. Without it,
//! or when the filter cannot be loaded, the edge runs alone.

use crate::Dur;
use serde::Deserialize;
use std::time::Duration;

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native when the driver supports it, else generic.
    #[default]
    Auto,
    /// In the driver (fastest; the driver must support XDP).
    Native,
    /// After the driver (any interface; slower).
    Generic,
}

/// The `[xdp]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Xdp {
    /// Interface to protect, e.g. `eth0`. Unset: no packet filter.
    pub iface: Option<String>,
    pub mode: XdpMode,
    /// bpffs directory for the pinned program link and maps.
    pub pin_dir: String,
    /// SYNs per source address per `window` (0: off).
    pub syn_budget: u32,
    /// Packets per source address per `window` (0: off).
    pub packet_budget: u32,
    pub window: Dur,
    /// Let non-first IP fragments through (dropped by default).
    pub keep_fragments: bool,
    /// UDP ports this host serves (traffic from reflection ports to them passes).
    pub service_ports: Vec<u16>,
    /// How often the edge's block decisions are copied into the filter.
    pub sync_every: Dur,
    /// TCP ports whose handshakes XDP answers with SYN cookies (IPv4 and IPv6; needs
    /// the nftables SYNPROXY rules `levee xdp synproxy-rules` prints).
    pub synproxy_ports: Vec<u16>,
    /// MSS and window scale those SYN-ACKs advertise: the server's.
    pub synproxy_mss: u16,
    pub synproxy_wscale: u8,
}

impl Default for Xdp {
    fn default() -> Self {
        Xdp {
            iface: None,
            mode: XdpMode::Auto,
            pin_dir: "/sys/fs/bpf/levee".into(),
            syn_budget: 0,
            packet_budget: 0,
            window: Dur(Duration::from_secs(1)),
            keep_fragments: false,
            service_ports: Vec::new(),
            sync_every: Dur(Duration::from_millis(250)),
            synproxy_ports: Vec::new(),
            synproxy_mss: 1460,
            synproxy_wscale: 7,
        }
    }
}

/// Problems with `[xdp]`, as `(key path, message)`.
pub(crate) fn validate(x: &Xdp) -> Result<(), (String, String)> {
    if let Some(i) = &x.iface {
        if i.is_empty() || i.len() > 15 || i.contains(['/', ' ']) {
            return Err((
                "xdp.iface".into(),
                format!("{i:?} is not an interface name (see `ip link`)"),
            ));
        }
    }
    if x.pin_dir.is_empty() {
        return Err(("xdp.pin_dir".into(), "give a directory on a bpffs".into()));
    }
    if x.window.0 < Duration::from_millis(1) {
        return Err(("xdp.window".into(), "must be at least 1ms".into()));
    }
    if !(536..=9000).contains(&x.synproxy_mss) {
        return Err(("xdp.synproxy_mss".into(), "must be 536-9000".into()));
    }
    if x.synproxy_wscale > 14 {
        return Err(("xdp.synproxy_wscale".into(), "must be 0-14".into()));
    }
    let s = x.sync_every.0;
    if s < Duration::from_millis(10) || s > Duration::from_secs(1) {
        return Err((
            "xdp.sync_every".into(),
            "must be between 10ms and 1s (blocks reach the filter within it)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    const BASE: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";
    const SITE: &str =
        "\n[[site]]\nname = \"s\"\nhosts = [\"a\"]\n[[site.origin]]\naddress = \"127.0.0.1:81\"\n";

    fn err(extra: &str) -> String {
        crate::parse("levee.toml", &format!("{BASE}{extra}{SITE}"))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn xdp_table_parses_and_errors_name_the_key() {
        let c = crate::parse(
            "levee.toml",
            &format!(
                "{BASE}[xdp]\niface = \"eth0\"\nsynproxy_ports = [443]\nsync_every = \"100ms\"\n{SITE}"
            ),
        )
        .unwrap();
        assert_eq!(c.xdp.iface.as_deref(), Some("eth0"));
        assert_eq!(c.xdp.synproxy_ports, vec![443]);
        assert_eq!(c.xdp.mode, super::XdpMode::Auto);
        let e = err("[xdp]\nifcae = \"eth0\"\n");
        assert!(e.contains("levee.toml:") && e.contains("ifcae"), "{e}");
        let e = err("[xdp]\niface = \"a/b\"\n");
        assert!(e.contains("xdp.iface"), "{e}");
        let e = err("[xdp]\nsync_every = \"5s\"\n");
        assert!(e.contains("xdp.sync_every"), "{e}");
        let e = err("[xdp]\nmode = \"turbo\"\n");
        assert!(e.contains("xdp.mode") || e.contains("turbo"), "{e}");
        let e = err("[xdp]\nsynproxy_wscale = 15\n");
        assert!(e.contains("xdp.synproxy_wscale"), "{e}");
    }
}
