//! `levee xdp`: attach the packet filter and edit its lists, wired to `levee_xdp`.

use anyhow::{bail, Context, Result};
use levee_xdp::{Config, Filter, DEFAULT_PIN_DIR};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct XdpArgs {
    #[command(subcommand)]
    cmd: XdpCmd,
    /// bpffs directory holding the pinned link and maps.
    #[arg(long, global = true, default_value = DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
}

#[derive(clap::Subcommand)]
enum XdpCmd {
    /// Load the filter and attach it to an interface (it stays after this command exits).
    Attach {
        #[arg(long)]
        iface: String,
        /// `native` (in the driver), `generic` (any interface, slower), or `auto`.
        #[arg(long, default_value = "auto", value_parser = ["auto", "native", "generic"])]
        mode: String,
        /// SYNs per source per window (0: off).
        #[arg(long, default_value_t = 0)]
        syn_budget: u32,
        /// Packets per source per window (0: off).
        #[arg(long, default_value_t = 0)]
        pkt_budget: u32,
        /// The budgets' window: 1000 (ms), 1s, 500ms.
        #[arg(long, default_value = "1000", value_parser = crate::duration::millis)]
        window_ms: std::time::Duration,
        /// Let non-first fragments through.
        #[arg(long)]
        keep_fragments: bool,
        /// UDP ports this host serves (reflection-port traffic to them passes).
        #[arg(long)]
        service_port: Vec<u16>,
        /// TCP ports whose handshakes XDP answers with SYN cookies (IPv4 and IPv6);
        /// load the host settings of `levee xdp synproxy-rules` first.
        #[arg(long)]
        synproxy_port: Vec<u16>,
        /// MSS advertised by the SYN proxy (the server's).
        #[arg(long, default_value_t = 1460)]
        synproxy_mss: u16,
        /// Window scale advertised by the SYN proxy (the server's).
        #[arg(long, default_value_t = 7)]
        synproxy_wscale: u8,
    },
    /// Print the host settings (sysctls, nftables SYNPROXY rules) the XDP SYN proxy needs.
    SynproxyRules {
        #[arg(long, required = true)]
        port: Vec<u16>,
        #[arg(long, default_value_t = 1460)]
        mss: u16,
        #[arg(long, default_value_t = 7)]
        wscale: u8,
    },
    /// Remove the filter from its interface and its pins.
    Detach,
    /// Drop packets from an address or prefix, for --ttl (10m, 1h, a bare number of seconds; 0: until unblocked).
    Block {
        cidr: String,
        #[arg(long, default_value = "0", value_parser = crate::duration::seconds)]
        ttl: std::time::Duration,
    },
    /// Remove a block.
    Unblock { cidr: String },
    /// Never drop an address or prefix by a list.
    Allow { cidr: String },
    /// Packets per reason since the filter was attached, and their rate now.
    Stats {
        /// How long to watch for the rates.
        #[arg(long, default_value = "1000", value_parser = crate::duration::millis)]
        interval_ms: std::time::Duration,
    },
    /// Blocked addresses and their expiry.
    List,
}

fn cidr(s: &str) -> Result<(IpAddr, u8)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = a.parse().with_context(|| {
        format!("{s:?} is not an address or CIDR (e.g. 192.0.2.7 or 198.51.100.0/24)")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .with_context(|| format!("{s:?}: the prefix length must be 0-{max}"))?,
        None => max,
    };
    Ok((ip, len))
}

fn open(dir: &Path) -> Result<Filter> {
    if !dir.join("CONFIG").exists() {
        bail!(
            "no filter pinned at {}: run `levee xdp attach --iface IF` first",
            dir.display()
        );
    }
    Filter::open_pinned(None, dir)
        .with_context(|| format!("opening the filter pinned at {}", dir.display()))
}

pub(crate) fn run(a: XdpArgs) -> Result<()> {
    let dir = a.pin_dir.as_path();
    if !matches!(a.cmd, XdpCmd::SynproxyRules { .. }) {
        if let Err(e) = levee_xdp::host::check_privileges() {
            bail!("{e}");
        }
    }
    if let XdpCmd::Attach { iface, .. } = &a.cmd {
        if let Err(e) = levee_xdp::host::check_iface(iface) {
            bail!("{e}");
        }
    }
    match a.cmd {
        XdpCmd::Attach {
            iface,
            mode,
            syn_budget,
            pkt_budget,
            window_ms,
            keep_fragments,
            service_port,
            synproxy_port,
            synproxy_mss,
            synproxy_wscale,
        } => {
            levee_xdp::ensure_bpffs(dir)?;
            if dir.join("link").exists() {
                bail!(
                    "a filter is already attached (pins in {}); `levee xdp detach` first",
                    dir.display()
                );
            }
            // Without the host settings the SYN proxy would break every
            // connection to its ports: leave it off and say why.
            let problems = levee_xdp::host::synproxy_problems(&synproxy_port);
            let config = Config {
                drop_fragments: !keep_fragments,
                syn_budget,
                pkt_budget,
                window_ms: (window_ms.as_millis() as u64).max(1),
                synproxy: !synproxy_port.is_empty() && problems.is_empty(),
                synproxy_mss,
                synproxy_wscale,
            };
            let mut f = Filter::open_pinned(Some(config), dir)?;
            f.set_ports(&service_port, &synproxy_port)?;
            if !problems.is_empty() {
                eprintln!(
                    "levee xdp: warning: SYN proxy left off: {}; load the host settings printed by `levee xdp synproxy-rules --port {}` and attach again",
                    problems.join("; "),
                    synproxy_port[0]
                );
            }
            let m = match mode.as_str() {
                "native" => aya::programs::XdpMode::Driver,
                "generic" => aya::programs::XdpMode::Skb,
                _ => aya::programs::XdpMode::Default,
            };
            f.attach(&iface, m)?;
            println!(
                "levee xdp: attached to {iface} ({mode}); pins in {}",
                dir.display()
            );
            match levee_xdp::host::ensure_syncookies() {
                Ok((v, true)) => println!(
                    "levee xdp: SYN cookies were off; turned on (net.ipv4.tcp_syncookies = {v})"
                ),
                Ok((v, false)) => {
                    println!("levee xdp: SYN cookies on (net.ipv4.tcp_syncookies = {v})")
                }
                Err(e) => eprintln!("levee xdp: warning: {e}"),
            }
        }
        XdpCmd::SynproxyRules { port, mss, wscale } => {
            print!("{}", levee_xdp::host::synproxy_rules(&port, mss, wscale));
        }
        XdpCmd::Detach => {
            Filter::detach(dir)?;
            println!("levee xdp: detached; pins in {} removed", dir.display());
        }
        XdpCmd::Block { cidr: c, ttl } => {
            let (ip, len) = cidr(&c)?;
            let exp = if ttl.is_zero() {
                0
            } else {
                levee_xdp::monotonic_ns().saturating_add(ttl.as_nanos() as u64)
            };
            open(dir)?.block(ip, len, exp)?;
            println!(
                "levee xdp: blocked {ip}/{len}{}",
                if !ttl.is_zero() {
                    format!(" for {ttl:?}")
                } else {
                    String::new()
                }
            );
        }
        XdpCmd::Unblock { cidr: c } => {
            let (ip, len) = cidr(&c)?;
            if !open(dir)?.unblock(ip, len)? {
                bail!("{ip}/{len} was not blocked");
            }
            println!("levee xdp: unblocked {ip}/{len}");
        }
        XdpCmd::Allow { cidr: c } => {
            let (ip, len) = cidr(&c)?;
            open(dir)?.allow(ip, len)?;
            println!("levee xdp: allowed {ip}/{len}");
        }
        XdpCmd::Stats { interval_ms } => {
            let f = open(dir)?;
            let first = f.stats()?;
            let interval = interval_ms.max(std::time::Duration::from_millis(1));
            let secs = interval.as_secs_f64();
            std::thread::sleep(interval);
            let second = f.stats()?;
            println!("{:<20} {:>14} {:>14}", "reason", "packets", "packets/s");
            for ((r, a), (_, b)) in first.iter().zip(&second) {
                let rate = b.saturating_sub(*a) as f64 / secs;
                println!("{:<20} {b:>14} {rate:>14.0}", r.label());
            }
            let mut top = f.blocks()?;
            top.retain(|b| b.hits > 0);
            top.sort_by_key(|b| std::cmp::Reverse(b.hits));
            if !top.is_empty() {
                println!("\nblock entries that dropped the most (of {}):", top.len());
                for b in top.iter().take(10) {
                    println!("{:<20} {:>14}", format!("{}/{}", b.net.0, b.net.1), b.hits);
                }
            }
            let c = levee_xdp::host::syncookies().map_or("unknown".into(), |v| v.to_string());
            println!("\nkernel SYN cookies: net.ipv4.tcp_syncookies = {c}");
            for (n, v) in levee_xdp::host::syncookie_counters() {
                println!("{n:<20} {v:>14}");
            }
        }
        XdpCmd::List => {
            let now = levee_xdp::monotonic_ns();
            let mut blocks = open(dir)?.blocks()?;
            blocks.sort_by_key(|b| b.net);
            for b in blocks {
                let (ip, len) = b.net;
                let who = if b.mirrored() { "edge" } else { "manual" };
                let exp = b.expires_ns();
                if exp == 0 {
                    println!("{ip}/{len}\tuntil unblocked\t{who}");
                } else if exp > now {
                    println!(
                        "{ip}/{len}\t{} s left\t{who}",
                        (exp - now).div_ceil(1_000_000_000)
                    );
                }
            }
        }
    }
    Ok(())
}
